//! What a task used, for whom (issue 21): the API key a turn was started
//! with goes with each of the task's LLM calls, as its user does, and the
//! final status reports the tokens and cost of all of them. Against a real
//! llm-proxy-service, whose builtin model costs nothing (a known price).

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::{Agents, V1, V03};

/// A message on behalf of `user` with the API key `key`, as chat-service
/// sends it (both in `metadata.confab`).
fn message(user: &str, key: Option<&str>) -> Value {
    let mut confab = json!({"user_id": user, "conversation_id": "conv-x"});
    if let Some(key) = key {
        confab["api_key_id"] = json!(key);
    }
    json!({
        "message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "What is 6 * 7?"}]},
        "metadata": {"confab": confab},
    })
}

#[tokio::test]
async fn the_api_key_goes_with_every_llm_call_of_the_task_and_the_cost_with_its_usage() {
    let agents = Agents::start(0).await;
    let results: Vec<Value> = agents
        .stream(
            "math",
            V1,
            "SendStreamingMessage",
            message("usr-ada", Some("key-7")),
        )
        .await
        .map(|response| response["result"].clone())
        .collect()
        .await;
    let last = &results.last().unwrap()["statusUpdate"];
    assert_eq!(last["status"]["state"], "TASK_STATE_COMPLETED", "{last}");
    let usage = &last["metadata"]["usage"];
    assert!(usage["input_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert!(usage["output_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert_eq!(
        usage["cost"],
        json!(0.0),
        "the builtin model's price: {usage}"
    );

    // Two calls (the calculator, then the answer), each with the key.
    let calls = agents.recorded_calls("usr-ada", 2).await;
    assert_eq!(calls.len(), 2);
    for call in &calls {
        assert_eq!(call.api_key_id.as_deref(), Some("key-7"), "{call:?}");
        assert_eq!(call.cost_nanos, Some(0));
    }
    let input: i64 = calls.iter().map(|c| c.input_tokens).sum();
    let output: i64 = calls.iter().map(|c| c.output_tokens).sum();
    assert_eq!(usage["input_tokens"].as_i64(), Some(input));
    assert_eq!(usage["output_tokens"].as_i64(), Some(output));
}

#[tokio::test]
async fn without_an_api_key_the_calls_carry_none_in_either_version() {
    let agents = Agents::start(0).await;
    let mut v03 = message("usr-bob", None);
    v03["message"] = json!({"kind": "message", "messageId": "m1", "role": "user",
                            "parts": [{"kind": "text", "text": "What is 6 * 7?"}]});
    let last = agents
        .stream("math", V03, "message/stream", v03)
        .await
        .collect::<Vec<Value>>()
        .await
        .pop()
        .unwrap();
    assert_eq!(last["result"]["status"]["state"], "completed", "{last}");
    assert_eq!(last["result"]["metadata"]["usage"]["cost"], json!(0.0));
    let calls = agents.recorded_calls("usr-bob", 2).await;
    assert!(!calls.is_empty());
    assert!(
        calls.iter().all(|call| call.api_key_id.is_none()),
        "{calls:?}"
    );
}
