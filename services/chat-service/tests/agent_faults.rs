//! chat-service against real agent processes that misbehave on the wire.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use confab_kit::settings::ServiceSettings;
use confab_kit::testing::{TestDatabase, init_test_tracing};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use llm_proxy_service::providers::ProviderSettings;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

/// How the front door before the agent misbehaves.
#[derive(Clone, Copy)]
enum Fault {
    /// Drops the first n connections, relays the rest.
    Refuse(usize),
    /// Relays the first connection until the agent has sent n SSE events,
    /// then cuts it; later connections are relayed (`agent_lives`) or
    /// dropped (the agent died).
    CutAfterEvents { events: usize, agent_lives: bool },
}

/// The math agent (with llm-proxy-service, its builtin model streaming a
/// chunk every 30 ms) behind a TCP front door that misbehaves as `fault` says.
async fn flaky_agent(fault: Fault, databases: &mut Vec<TestDatabase>) -> String {
    let database = TestDatabase::new("llm-proxy").await.unwrap();
    let mut llm = llm_proxy_service::Settings::defaults().unwrap();
    llm.server.port = 0;
    llm.database = database.settings.clone();
    if let Some(ProviderSettings::Builtin(builtin)) = llm.providers.get_mut("builtin") {
        builtin.chunk_delay_ms = 30;
    }
    databases.push(database);
    let llm = llm_proxy_service::build(llm).await.unwrap();
    let llm_url = format!("http://127.0.0.1:{}", llm.port());
    tokio::spawn(llm.run_until_stopped());

    let mut agents = demo_agents::Settings::defaults().unwrap();
    agents.llm.base_url = llm_url;
    for agent in agents.agents.values_mut() {
        agent.port = 0;
    }
    let agents = demo_agents::build(agents).await.unwrap();
    let agent_port = agents.port("math").unwrap();
    tokio::spawn(agents.run_until_stopped());

    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", front.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((mut client, _)) = front.accept().await {
            let nth = seen.fetch_add(1, Ordering::SeqCst);
            let cut_after = match fault {
                Fault::Refuse(n) if nth < n => continue,
                Fault::CutAfterEvents { events, .. } if nth == 0 => Some(events),
                Fault::CutAfterEvents {
                    agent_lives: false, ..
                } => continue,
                _ => None,
            };
            tokio::spawn(async move {
                let mut agent = TcpStream::connect(("127.0.0.1", agent_port)).await.unwrap();
                match cut_after {
                    None => {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut agent).await;
                    }
                    Some(events) => relay_then_cut(client, agent, events).await,
                }
            });
        }
    });
    url
}

/// Relays a connection until the agent has sent `events` SSE events, then
/// closes both sides.
async fn relay_then_cut(client: TcpStream, agent: TcpStream, events: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client_read, mut client_write) = client.into_split();
    let (mut agent_read, mut agent_write) = agent.into_split();
    let upstream = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut agent_write).await;
    });
    let mut seen = 0;
    let mut buffer = vec![0u8; 16 * 1024];
    while seen < events {
        let Ok(n) = agent_read.read(&mut buffer).await else {
            break;
        };
        if n == 0 {
            break;
        }
        seen += buffer[..n].windows(2).filter(|w| w == b"\n\n").count();
        if client_write.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    upstream.abort();
}

async fn chat_service(agent_url: String, databases: &mut Vec<TestDatabase>) -> String {
    let database = TestDatabase::new("chat").await.unwrap();
    let mut settings = chat_service::Settings::defaults().unwrap();
    settings.server.port = 0;
    settings.database = database.settings.clone();
    databases.push(database);
    settings.agents.get_mut("math").unwrap().url = agent_url;
    settings.a2a.retry_base_ms = 10;
    let app = chat_service::build(settings).await.unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    url
}

/// One turn through chat-service: its events, and the persisted messages.
async fn turn(chat: &str, message: &str) -> (Vec<Value>, Vec<Value>) {
    let http = reqwest::Client::new();
    let as_ada = |request: reqwest::RequestBuilder| {
        request
            .header("x-service-token", "confab-dev-service-token")
            .header("x-user-id", "usr-ada")
    };
    let created: Value = as_ada(http.post(format!("{chat}/chat/conversations")))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let response = as_ada(http.post(format!("{chat}/chat/conversations/{id}/messages/stream")))
        .json(&json!({"message": message}))
        .send()
        .await
        .unwrap();
    let mut events = Vec::new();
    let mut stream = response.bytes_stream().eventsource();
    while let Some(event) = stream.next().await {
        events.push(serde_json::from_str::<Value>(&event.unwrap().data).unwrap());
    }
    let page: Value = as_ada(http.get(format!("{chat}/chat/conversations/{id}/messages")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (events, page["items"].as_array().unwrap().clone())
}

fn streamed_text(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "text")
        .map(|e| e["text"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn an_agent_that_refuses_two_connections_is_retried_then_answers() {
    init_test_tracing();
    let mut databases = Vec::new();
    let agent = flaky_agent(Fault::Refuse(2), &mut databases).await;
    let chat = chat_service(agent, &mut databases).await;
    let (events, _) = turn(&chat, "What is 6 * 7?").await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        &types[..3],
        ["message_start", "retry", "retry"],
        "{types:?}"
    );
    assert_eq!(events[1]["attempt"], 2);
    assert_eq!(events[2]["attempt"], 3);
    assert_eq!(streamed_text(&events), "The answer is 42.");
    assert_eq!(events.last().unwrap()["status"], "complete");
}

#[tokio::test]
async fn a_dropped_stream_is_resumed_without_a_gap_or_a_duplicate() {
    init_test_tracing();
    let mut databases = Vec::new();
    let fault = Fault::CutAfterEvents {
        events: 3,
        agent_lives: true,
    };
    let agent = flaky_agent(fault, &mut databases).await;
    let chat = chat_service(agent, &mut databases).await;
    let words = vec!["word"; 20].join(" ");
    let (events, messages) = turn(&chat, &words).await;
    assert_eq!(streamed_text(&events), words);
    assert_eq!(events.last().unwrap()["status"], "complete");
    assert_eq!(messages[1]["content"], words.as_str());
    assert_eq!(messages[1]["status"], "complete");
}

#[tokio::test]
async fn an_agent_that_dies_after_three_chunks_leaves_an_incomplete_message() {
    init_test_tracing();
    let mut databases = Vec::new();
    let fault = Fault::CutAfterEvents {
        events: 3,
        agent_lives: false,
    };
    let agent = flaky_agent(fault, &mut databases).await;
    let chat = chat_service(agent, &mut databases).await;
    let words = vec!["word"; 20].join(" ");
    let (events, messages) = turn(&chat, &words).await;
    let partial = streamed_text(&events);
    assert!(
        !partial.is_empty() && partial.len() < words.len(),
        "{partial:?}"
    );
    let error = events.iter().find(|e| e["type"] == "error").unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("re-subscribing failed"),
        "{error}"
    );
    assert_eq!(events.last().unwrap()["status"], "incomplete");
    assert_eq!(messages.len(), 2, "exactly one assistant message");
    assert_eq!(messages[1]["status"], "incomplete");
    assert_eq!(
        messages[1]["content"],
        partial.as_str(),
        "the chunks that arrived are kept"
    );
}
