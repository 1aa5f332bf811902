//! chat-service killed mid-turn: at the next start the reply is marked
//! `interrupted` and the conversation takes a new turn. The service runs as
//! its real binary here, so that it can really be killed.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use confab_kit::testing::{Stack, TestDatabase};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::{SERVICE_TOKEN, start_agents, streamed_text};

/// The chat-service binary on `port`, killed when dropped.
struct Process(Child);

impl Process {
    async fn start(port: u16, database_url: &str, math_url: &str) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_chat-service"))
            .env_clear()
            .env("PORT", port.to_string())
            .env("DATABASE_URL", database_url)
            .env("CONFAB__AGENTS__MATH__URL", math_url)
            .env("RUST_LOG", "warn")
            // Development: it runs on the development secrets of the defaults.
            .env("CONFAB__ENV", "development")
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("starting the chat-service binary");
        // Owned at once, so that it is killed and reaped whatever happens.
        let process = Self(child);
        let ready = format!("http://127.0.0.1:{port}/ready");
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
    fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_turn_cut_off_by_a_crash_is_interrupted_and_the_conversation_goes_on() {
    let mut stack = Stack::new();
    let agents = start_agents(40, &mut stack).await;
    let database = TestDatabase::new("chat").await.unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let as_ada = |request: reqwest::RequestBuilder| {
        request
            .header("x-service-token", SERVICE_TOKEN)
            .header("x-user-id", "usr-ada")
    };

    let chat = Process::start(port, &database.settings.url, &agents["math"]).await;
    let created: Value = as_ada(http.post(format!("{base}/chat/conversations")))
        .json(&json!({"agent_id": "math"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conversation = created["id"].as_str().unwrap().to_owned();
    let words = vec!["word"; 100].join(" ");
    let response = as_ada(http.post(format!(
        "{base}/chat/conversations/{conversation}/messages/stream"
    )))
    .json(&json!({"message": words}))
    .send()
    .await
    .unwrap();
    let mut stream = Box::pin(response.bytes_stream().eventsource());
    while let Some(event) = stream.next().await {
        let event: Value = serde_json::from_str(&event.unwrap().data).unwrap();
        if event["type"] == "text" {
            break;
        }
    }
    chat.kill(); // mid-turn, SIGKILL: nothing gets to clean up
    drop(stream);

    let _chat = Process::start(port, &database.settings.url, &agents["math"]).await;
    let page: Value =
        as_ada(http.get(format!("{base}/chat/conversations/{conversation}/messages")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let messages = page["items"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        2,
        "the question and one reply: {messages:?}"
    );
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["status"], "interrupted");

    let response = as_ada(http.post(format!(
        "{base}/chat/conversations/{conversation}/messages/stream"
    )))
    .json(&json!({"message": "What is 6 * 7?"}))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 200, "the conversation takes a new turn");
    let events: Vec<Value> = response
        .bytes_stream()
        .eventsource()
        .map(|e| serde_json::from_str(&e.unwrap().data).unwrap())
        .collect()
        .await;
    assert_eq!(streamed_text(&events), "The answer is 42.");
    assert_eq!(events.last().unwrap()["status"], "complete");
}
