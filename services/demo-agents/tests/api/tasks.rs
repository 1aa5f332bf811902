//! An agent's tasks over A2A v1.0: `GetTask`, and `CancelTask` stopping a
//! task mid-stream. The agent thinks through a real llm-proxy-service whose
//! builtin model is slowed down, so there is time to cancel.

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::{Agents, V1};

#[tokio::test]
async fn cancel_stops_a_running_task_and_it_ends_canceled() {
    let agent = Agents::start(40).await;
    let words = vec!["word"; 100].join(" ");
    let mut stream = Box::pin(agent.send_v1("math", &words).await);
    let first = stream.next().await.unwrap();
    let task_id = first["task"]["id"].as_str().unwrap().to_owned();
    let update = stream.next().await.unwrap();
    assert!(update["artifactUpdate"].is_object(), "{update}");

    let canceled = agent
        .rpc("math", V1, "CancelTask", json!({"id": task_id}))
        .await;
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

    let task = agent
        .rpc("math", V1, "GetTask", json!({"id": task_id}))
        .await;
    assert_eq!(task["result"]["status"]["state"], "TASK_STATE_CANCELED");
    let partial = task["result"]["artifacts"][0]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert!(
        !partial.is_empty() && partial.len() < words.len(),
        "stopped mid-way: {partial:?}"
    );

    let again = agent
        .rpc("math", V1, "CancelTask", json!({"id": task_id}))
        .await;
    assert_eq!(
        again["error"]["code"], -32002,
        "an ended task is not cancelable"
    );
}

#[tokio::test]
async fn a_finished_task_can_be_read_back_and_unknown_ones_are_not_found() {
    let agent = Agents::start(0).await;
    let results: Vec<Value> = agent
        .send_v1("math", "What is 6 * 7?")
        .await
        .collect()
        .await;
    let task_id = results[0]["task"]["id"].as_str().unwrap();
    let task = agent
        .rpc("math", V1, "GetTask", json!({"id": task_id}))
        .await;
    assert_eq!(task["result"]["status"]["state"], "TASK_STATE_COMPLETED");
    assert_eq!(
        task["result"]["artifacts"][0]["parts"][0]["text"],
        "The answer is 42."
    );

    let missing = agent
        .rpc("math", V1, "GetTask", json!({"id": "task-nope"}))
        .await;
    assert_eq!(missing["error"]["code"], -32001);
    let no_id = agent.rpc("math", V1, "CancelTask", json!({})).await;
    assert_eq!(no_id["error"]["code"], -32602);
}

#[tokio::test]
async fn malformed_json_rpc_gets_the_right_error_and_the_agent_keeps_serving() {
    let agent = Agents::start(0).await;
    let raw = |body: Vec<u8>| {
        let request = agent
            .http
            .post(agent.url("math"))
            .bearer_auth(&agent.service_token)
            .header("content-type", "application/json")
            .body(body);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(raw(b"{not json".to_vec()).await["error"]["code"], -32700);
    assert_eq!(raw(b"[1, 2]".to_vec()).await["error"]["code"], -32600);
    let unknown = agent.rpc("math", V1, "NoSuchMethod", json!({})).await;
    assert_eq!(unknown["error"]["code"], -32601);
    assert_eq!(unknown["id"], 7);
    let wrong = agent
        .rpc(
            "math",
            V1,
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
    let results: Vec<Value> = agent.send_v1("math", "hello").await.collect().await;
    assert_eq!(
        results.last().unwrap()["statusUpdate"]["status"]["state"],
        "TASK_STATE_COMPLETED"
    );
}

#[tokio::test]
async fn a_dropped_stream_is_picked_up_again_with_subscribe_to_task() {
    let agent = Agents::start(20).await;
    let words = vec!["word"; 40].join(" ");
    let mut stream = Box::pin(agent.send_v1("math", &words).await);
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
        .post(agent.url("math"))
        .bearer_auth(&agent.service_token)
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

    // An ended task has nothing left to subscribe to (the specification's
    // UnsupportedOperationError); GetTask has it.
    let ended = agent
        .rpc("math", V1, "SubscribeToTask", json!({"id": task_id}))
        .await;
    assert_eq!(ended["error"]["code"], -32004, "{ended}");
    assert_eq!(ended["error"]["data"][0]["reason"], "UNSUPPORTED_OPERATION");
}
