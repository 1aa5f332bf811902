//! What the tests that start real processes share: a child killed with its
//! handle, a free port, waiting for something to come true, and reading a
//! stream's text while the test goes on.

use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use llm_proxy_service::store::trace_events::TraceEventRow;
use serde_json::Value;

/// A child process, killed (SIGKILL) and reaped when dropped, whatever
/// happens to the test.
pub struct Killed(pub Child);

impl Killed {
    /// SIGKILL now: the process gets no chance to clean up.
    pub fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nothing listens on (bound, then let go).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` every 50 ms until it answers, for up to a minute.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..1200 {
        if let Some(found) = check().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("waited a minute for {what}");
}

/// Reads a streamed completion in the background: the text it has brought
/// so far, and the task, which answers whether the stream ended with
/// `[DONE]`.
pub fn follow(response: reqwest::Response) -> (Arc<Mutex<String>>, tokio::task::JoinHandle<bool>) {
    let received = Arc::new(Mutex::new(String::new()));
    let text = Arc::clone(&received);
    let reading = tokio::spawn(async move {
        let mut events = response.bytes_stream().eventsource();
        let mut done = false;
        while let Some(Ok(event)) = events.next().await {
            done = event.data == "[DONE]";
            let chunk: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
            if let Some(piece) = chunk["choices"][0]["delta"]["content"].as_str() {
                text.lock().unwrap().push_str(piece);
            }
        }
        done
    });
    (received, reading)
}

/// The text of a call's stored `llm.delta` events, in order.
pub fn delta_text(events: &[TraceEventRow]) -> String {
    events
        .iter()
        .filter(|e| e.kind == "llm.delta")
        .map(|e| {
            let data: Value = serde_json::from_str(&e.data).unwrap();
            data["content"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}
