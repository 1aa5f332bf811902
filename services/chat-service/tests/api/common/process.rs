//! chat-service as its real binary, in a process of its own, so that a test
//! can really kill it (SIGKILL: nothing gets to clean up).
//!
//! It listens on a port it picks itself (port 0) and the test reads the URL
//! from its `listening` log line: a port picked by the test and handed over
//! could be taken meanwhile by any other test's service, which would then
//! answer in its place.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// A running chat-service process, killed when dropped.
pub struct Process {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl Process {
    /// The binary on the defaults, in development, with `env` set (the
    /// database and the agents, at least); once it is ready.
    pub async fn start(env: &[(&str, String)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat-service"))
            .env_clear()
            .envs(env.iter().map(|(name, value)| (name, value)))
            .env("PORT", "0")
            .env("CONFAB__TELEMETRY__LOG_FORMAT", "json")
            .env("RUST_LOG", "warn,chat_service=info")
            // Development: it runs on the development secrets of the defaults.
            .env("CONFAB__ENV", "development")
            // No llm-proxy-service to ask about budgets here.
            .env("CONFAB__BUDGET__ENABLED", "false")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("starting the chat-service binary: {err}"));
        let stdout = child.stdout.take().unwrap();
        // Owned at once, so that it is killed and reaped whatever happens.
        let mut process = Self {
            child,
            url: String::new(),
        };
        let listening = tokio::task::spawn_blocking(move || {
            let show = std::env::var_os("TEST_LOG").is_some();
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            let url = lines.by_ref().find_map(|line| {
                if show {
                    println!("{line}");
                }
                let line: Value = serde_json::from_str(&line).ok()?;
                let url = line["url"]
                    .as_str()
                    .filter(|_| line["message"] == "listening");
                url.map(str::to_owned)
            });
            // Read to the end, so that the process never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in lines {
                    if show {
                        println!("{line}");
                    }
                }
            });
            url
        });
        process.url = tokio::time::timeout(Duration::from_secs(30), listening)
            .await
            .unwrap_or_else(|_| panic!("chat-service did not listen within 30 s"))
            .unwrap()
            .unwrap_or_else(|| panic!("chat-service exited before it listened"));
        let ready = format!("{}/ready", process.url);
        for _ in 0..200 {
            if reqwest::get(&ready)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return process;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("chat-service did not become ready on {ready}");
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
