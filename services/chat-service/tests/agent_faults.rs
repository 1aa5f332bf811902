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
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

/// The math agent (with llm-proxy-service) behind a TCP front door that
/// drops the first `refuse` connections and relays the rest unchanged.
async fn flaky_agent(refuse: usize, databases: &mut Vec<TestDatabase>) -> String {
    let database = TestDatabase::new("llm-proxy").await.unwrap();
    let mut llm = llm_proxy_service::Settings::defaults().unwrap();
    llm.server.port = 0;
    llm.database = database.settings.clone();
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
            if seen.fetch_add(1, Ordering::SeqCst) < refuse {
                drop(client);
                continue;
            }
            tokio::spawn(async move {
                let mut agent = TcpStream::connect(("127.0.0.1", agent_port)).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut agent).await;
            });
        }
    });
    url
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

#[tokio::test]
async fn an_agent_that_refuses_two_connections_is_retried_then_answers() {
    init_test_tracing();
    let mut databases = Vec::new();
    let agent = flaky_agent(2, &mut databases).await;
    let chat = chat_service(agent, &mut databases).await;
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
        .json(&json!({"message": "What is 6 * 7?"}))
        .send()
        .await
        .unwrap();
    let mut events = Vec::new();
    let mut stream = response.bytes_stream().eventsource();
    while let Some(event) = stream.next().await {
        events.push(serde_json::from_str::<Value>(&event.unwrap().data).unwrap());
    }
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        &types[..3],
        ["message_start", "retry", "retry"],
        "{types:?}"
    );
    assert_eq!(events[1]["attempt"], 2);
    assert_eq!(events[2]["attempt"], 3);
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "text")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "The answer is 42.");
    assert_eq!(events.last().unwrap()["status"], "complete");
}
