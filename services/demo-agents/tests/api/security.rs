//! Who may call an agent, and how much: every JSON-RPC call needs the
//! service token or the agent's inbound key (the card says so, in both
//! A2A versions' shapes), and an agent runs a bounded number of tasks.
//! Over real HTTP, against agents thinking through a real llm-proxy-service.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::{Agents, V1, V03};

const INBOUND_KEY: &str = "math-only-inbound-key-for-tests";

/// `SendMessage` over v1.0 on behalf of `user`, as chat-service sends it
/// (the user in `metadata.confab`); not blocking when `blocking` is false.
fn send_message(user: &str, text: &str, blocking: bool) -> Value {
    json!({"jsonrpc": "2.0", "id": 3, "method": "SendMessage", "params": {
        "message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": text}]},
        "configuration": {"blocking": blocking},
        "metadata": {"confab": {"user_id": user, "conversation_id": "conv-x"}}
    }})
}

/// Asserts a refusal for want of a credential: HTTP 401 with a challenge
/// and a JSON-RPC error.
async fn assert_refused(response: reqwest::Response, challenge: &str) {
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], challenge);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], Value::Null, "{body}");
    assert_eq!(body["error"]["code"], -32000, "{body}");
    assert!(body.get("result").is_none(), "{body}");
}

/// Asserts that a blocking `SendMessage` was answered with a completed task.
fn assert_completed(answer: &Value) {
    assert_eq!(
        answer["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED",
        "{answer}"
    );
}

#[tokio::test]
async fn a_call_without_an_accepted_credential_is_refused_and_writes_nothing_for_the_user() {
    let agents = Agents::start(0).await;
    // The confused deputy: anyone who reaches the agent names a victim; the
    // agent would call llm-proxy-service with its own key on their behalf.
    let attack = send_message("usr-victim", "What is 6 * 7?", true);
    let none = agents.post_with("math", V1, None, attack.clone()).await;
    assert_refused(none, r#"Bearer realm="math""#).await;
    for wrong in [
        "not-the-token",
        // An agent's own key towards llm-proxy-service is not a way in.
        "confab-dev-agent-key-math",
        // Another agent's inbound key is not this one's.
        INBOUND_KEY,
    ] {
        for version in [V1, V03] {
            let response = agents
                .post_with("text", version, Some(wrong), attack.clone())
                .await;
            assert_refused(response, r#"Bearer realm="text", error="invalid_token""#).await;
        }
    }
    // Task methods too: a task id is no credential.
    let get = json!({"jsonrpc": "2.0", "id": 4, "method": "GetTask", "params": {"id": "task-x"}});
    assert_refused(
        agents.post_with("math", V1, None, get).await,
        r#"Bearer realm="math""#,
    )
    .await;

    // The service token works, and its user's call is recorded...
    let answer = agents
        .call(
            "math",
            V1,
            send_message("usr-friend", "What is 6 * 7?", true),
        )
        .await;
    assert_completed(&answer);
    let mut recorded = Vec::new();
    for _ in 0..100 {
        recorded = agents.llm_calls("usr-friend").await;
        if !recorded.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!recorded.is_empty(), "the legitimate call is recorded");
    // ...while the refused ones, sent before it, left nothing for the victim.
    assert_eq!(agents.llm_calls("usr-victim").await, Vec::<Value>::new());
}

#[tokio::test]
async fn the_agents_inbound_key_is_accepted_by_that_agent_alone() {
    let agents = Agents::start_with(0, |settings| {
        settings.agents.get_mut("math").unwrap().inbound_key = Some(INBOUND_KEY.into());
    })
    .await;
    let ask = send_message("usr-a", "What is 6 * 7?", true);
    let answer: Value = agents
        .post_with("math", V1, Some(INBOUND_KEY), ask.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_completed(&answer);
    assert_refused(
        agents.post_with("text", V1, Some(INBOUND_KEY), ask).await,
        r#"Bearer realm="text", error="invalid_token""#,
    )
    .await;
    // The service token still opens every agent, streaming included.
    let results: Vec<Value> = agents
        .send_v1("text", "Uppercase: hello")
        .await
        .collect()
        .await;
    assert_eq!(
        results.last().unwrap()["statusUpdate"]["status"]["state"],
        "TASK_STATE_COMPLETED"
    );
}

#[tokio::test]
async fn the_card_is_public_and_declares_the_bearer_scheme_in_both_versions() {
    let agents = Agents::start(0).await;
    for path in [".well-known/agent-card.json", ".well-known/agent.json"] {
        let card: Value = agents
            .http
            .get(format!("{}{path}", agents.url("math")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let scheme = &card["securitySchemes"]["bearer"];
        // v1.0: the oneof member, and the requirement naming it.
        assert_eq!(
            scheme["httpAuthSecurityScheme"]["scheme"], "Bearer",
            "{card}"
        );
        assert_eq!(
            card["securityRequirements"],
            json!([{"schemes": {"bearer": {"list": []}}}])
        );
        // v0.3: the OpenAPI shape, and the requirement naming it.
        assert_eq!(scheme["type"], "http");
        assert_eq!(scheme["scheme"], "bearer");
        assert_eq!(card["security"], json!([{"bearer": []}]));
    }
}

/// Polls `GetTask` until the task has ended.
async fn wait_until_ended(agents: &Agents, task_id: &str) {
    for _ in 0..200 {
        let task = agents
            .rpc("math", V1, "GetTask", json!({"id": task_id}))
            .await;
        let state = task["result"]["status"]["state"]
            .as_str()
            .unwrap()
            .to_owned();
        if matches!(
            state.as_str(),
            "TASK_STATE_COMPLETED" | "TASK_STATE_CANCELED" | "TASK_STATE_FAILED"
        ) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("task {task_id} did not end");
}

#[tokio::test]
async fn past_the_limit_of_running_tasks_a_new_one_is_refused_as_busy_until_one_ends() {
    // Every chunk of the builtin model 50 ms apart: a 100-word echo runs
    // for five seconds, so the first tasks are still running.
    let agents = Agents::start_with(50, |settings| settings.limits.max_running_tasks = 2).await;
    let words = vec!["word"; 100].join(" ");
    let mut running = Vec::new();
    for _ in 0..2 {
        let started = agents
            .call("math", V1, send_message("usr-a", &words, false))
            .await;
        running.push(started["result"]["task"]["id"].as_str().unwrap().to_owned());
    }

    // The third, whichever way it is sent, is refused and not started.
    let v03_send = json!({"jsonrpc": "2.0", "id": 5, "method": "message/send", "params": {
        "message": {"kind": "message", "messageId": "m2", "role": "user",
                    "parts": [{"kind": "text", "text": words}]},
        "configuration": {"blocking": false}
    }});
    let streaming = json!({"jsonrpc": "2.0", "id": 6, "method": "SendStreamingMessage", "params": {
        "message": {"messageId": "m3", "role": "ROLE_USER", "parts": [{"text": words}]}
    }});
    for (version, body) in [
        (V1, send_message("usr-a", &words, false)),
        (V03, v03_send),
        (V1, streaming),
    ] {
        let id = body["id"].clone();
        let response = agents.post("math", version, body).await;
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "1");
        let refused: Value = response.json().await.unwrap();
        assert_eq!(refused["id"], id);
        assert_eq!(refused["error"]["code"], -32603, "{refused}");
        assert_eq!(
            refused["error"]["message"],
            "the agent is busy: 2 tasks are running (limit 2); retry later"
        );
    }
    // The limit is the agent's own: another agent still takes work.
    let text = agents
        .call("text", V1, send_message("usr-a", "Uppercase: hi", false))
        .await;
    assert!(text["result"]["task"]["id"].is_string(), "{text}");

    // A task that ends stops counting: cancel one, and a new task starts.
    let canceled = agents
        .rpc("math", V1, "CancelTask", json!({"id": running[0]}))
        .await;
    assert_eq!(canceled["result"]["status"]["state"], "TASK_STATE_CANCELED");
    wait_until_ended(&agents, &running[0]).await;
    let started = agents
        .call("math", V1, send_message("usr-a", "What is 6 * 7?", true))
        .await;
    assert_completed(&started);
}
