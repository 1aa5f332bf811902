//! An agent's tasks over A2A v1.0: `GetTask`, and `CancelTask` stopping a
//! task mid-stream. The agent thinks through a real llm-proxy-service whose
//! builtin model is slowed down, so there is time to cancel.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

use confab_kit::settings::ServiceSettings;
use confab_kit::testing::{TestDatabase, init_test_tracing};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use llm_proxy_service::providers::ProviderSettings;
use serde_json::{Value, json};

struct Agent {
    url: String,
    http: reqwest::Client,
    _database: TestDatabase,
}

impl Agent {
    async fn start(chunk_delay_ms: u64) -> Self {
        init_test_tracing();
        let database = TestDatabase::new("llm-proxy").await.unwrap();
        let mut llm = llm_proxy_service::Settings::defaults().unwrap();
        llm.server.port = 0;
        llm.database = database.settings.clone();
        if let Some(ProviderSettings::Builtin(builtin)) = llm.providers.get_mut("builtin") {
            builtin.chunk_delay_ms = chunk_delay_ms;
        }
        let llm = llm_proxy_service::build(llm).await.unwrap();
        let llm_url = format!("http://127.0.0.1:{}", llm.port());
        tokio::spawn(llm.run_until_stopped());
        let mut settings = demo_agents::Settings::defaults().unwrap();
        settings.llm.base_url = llm_url;
        for agent in settings.agents.values_mut() {
            agent.port = 0;
        }
        let agents = demo_agents::build(settings).await.unwrap();
        let url = format!("http://127.0.0.1:{}/", agents.port("math").unwrap());
        tokio::spawn(agents.run_until_stopped());
        Self {
            url,
            http: reqwest::Client::new(),
            _database: database,
        }
    }

    async fn rpc(&self, method: &str, params: Value) -> Value {
        self.http
            .post(&self.url)
            .header("A2A-Version", "1.0")
            .json(&json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn stream(&self, text: &str) -> impl futures_util::Stream<Item = Value> + use<> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage", "params": {
            "message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": text}]}
        }});
        let response = self
            .http
            .post(&self.url)
            .header("A2A-Version", "1.0")
            .json(&body)
            .send()
            .await
            .unwrap();
        response.bytes_stream().eventsource().map(|event| {
            serde_json::from_str::<Value>(&event.unwrap().data).unwrap()["result"].clone()
        })
    }
}

#[tokio::test]
async fn cancel_stops_a_running_task_and_it_ends_canceled() {
    let agent = Agent::start(40).await;
    let words = vec!["word"; 100].join(" ");
    let mut stream = Box::pin(agent.stream(&words).await);
    let first = stream.next().await.unwrap();
    let task_id = first["task"]["id"].as_str().unwrap().to_owned();
    let update = stream.next().await.unwrap();
    assert!(update["artifactUpdate"].is_object(), "{update}");

    let canceled = agent.rpc("CancelTask", json!({"id": task_id})).await;
    assert_eq!(
        canceled["result"]["status"]["state"], "TASK_STATE_CANCELED",
        "{canceled}"
    );

    let mut last = Value::Null;
    while let Some(result) = stream.next().await {
        last = result;
    }
    assert_eq!(
        last["statusUpdate"]["status"]["state"], "TASK_STATE_CANCELED",
        "{last}"
    );

    let task = agent.rpc("GetTask", json!({"id": task_id})).await;
    assert_eq!(task["result"]["status"]["state"], "TASK_STATE_CANCELED");
    let partial = task["result"]["artifacts"][0]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert!(
        !partial.is_empty() && partial.len() < words.len(),
        "stopped mid-way: {partial:?}"
    );

    let again = agent.rpc("CancelTask", json!({"id": task_id})).await;
    assert_eq!(
        again["error"]["code"], -32002,
        "an ended task is not cancelable"
    );
}

#[tokio::test]
async fn a_finished_task_can_be_read_back_and_unknown_ones_are_not_found() {
    let agent = Agent::start(0).await;
    let results: Vec<Value> = agent.stream("What is 6 * 7?").await.collect().await;
    let task_id = results[0]["task"]["id"].as_str().unwrap();
    let task = agent.rpc("GetTask", json!({"id": task_id})).await;
    assert_eq!(task["result"]["status"]["state"], "TASK_STATE_COMPLETED");
    assert_eq!(
        task["result"]["artifacts"][0]["parts"][0]["text"],
        "The answer is 42."
    );

    let missing = agent.rpc("GetTask", json!({"id": "task-nope"})).await;
    assert_eq!(missing["error"]["code"], -32001);
    let no_id = agent.rpc("CancelTask", json!({})).await;
    assert_eq!(no_id["error"]["code"], -32602);
}

#[tokio::test]
async fn malformed_json_rpc_gets_the_right_error_and_the_agent_keeps_serving() {
    let agent = Agent::start(0).await;
    let raw = |body: Vec<u8>| {
        let request = agent
            .http
            .post(&agent.url)
            .header("content-type", "application/json")
            .body(body);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(raw(b"{not json".to_vec()).await["error"]["code"], -32700);
    assert_eq!(raw(b"[1, 2]".to_vec()).await["error"]["code"], -32600);
    let unknown = agent.rpc("NoSuchMethod", json!({})).await;
    assert_eq!(unknown["error"]["code"], -32601);
    assert_eq!(unknown["id"], 7);
    let wrong = agent
        .rpc(
            "SendStreamingMessage",
            json!({"message": {"parts": "not a list"}}),
        )
        .await;
    assert_eq!(wrong["error"]["code"], -32602);
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"SendStreamingMessage","params":{{"message":{{"messageId":"m","role":"ROLE_USER","parts":[{{"text":"{}"}}]}}}}}}"#,
        "x".repeat(10 * 1024 * 1024)
    );
    assert_eq!(raw(huge.into_bytes()).await["error"]["code"], -32600);

    // Still serving.
    let results: Vec<Value> = agent.stream("hello").await.collect().await;
    assert_eq!(
        results.last().unwrap()["statusUpdate"]["status"]["state"],
        "TASK_STATE_COMPLETED"
    );
}

#[tokio::test]
async fn a_dropped_stream_is_picked_up_again_with_subscribe_to_task() {
    let agent = Agent::start(20).await;
    let words = vec!["word"; 40].join(" ");
    let mut stream = Box::pin(agent.stream(&words).await);
    let task_id = stream.next().await.unwrap()["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    stream.next().await.unwrap();
    drop(stream); // the client goes away; the task goes on

    let body =
        json!({"jsonrpc": "2.0", "id": 2, "method": "SubscribeToTask", "params": {"id": task_id}});
    let response = agent
        .http
        .post(&agent.url)
        .header("A2A-Version", "1.0")
        .json(&body)
        .send()
        .await
        .unwrap();
    let results: Vec<Value> = response
        .bytes_stream()
        .eventsource()
        .map(|event| serde_json::from_str::<Value>(&event.unwrap().data).unwrap()["result"].clone())
        .collect()
        .await;
    let snapshot = &results[0]["task"];
    assert_eq!(snapshot["id"], task_id.as_str(), "the snapshot comes first");
    let mut text = snapshot["artifacts"][0]["parts"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for result in &results[1..] {
        if let Some(part) = result["artifactUpdate"]["artifact"]["parts"][0]["text"].as_str() {
            text.push_str(part);
        }
    }
    assert_eq!(
        text, words,
        "snapshot plus live updates: no gap, no duplicate"
    );
    assert_eq!(
        results.last().unwrap()["statusUpdate"]["status"]["state"],
        "TASK_STATE_COMPLETED"
    );

    // Subscribing to an ended task gives its final snapshot and ends.
    let body =
        json!({"jsonrpc": "2.0", "id": 3, "method": "SubscribeToTask", "params": {"id": task_id}});
    let response = agent
        .http
        .post(&agent.url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let results: Vec<String> = response
        .bytes_stream()
        .eventsource()
        .map(|e| e.unwrap().data)
        .collect()
        .await;
    assert_eq!(results.len(), 1);
}
