//! A chat socket wakes only for its own conversation's news (DESIGN §14).
//!
//! Alone in its test binary: the wake-ups are read from the process-wide
//! `/metrics` counter `chat_socket_wakeups_total`, which another test
//! running alongside would move.

use std::time::Duration;

use confab_kit::testing::{Stack, metric, metrics_page};
use serde_json::json;

use crate::common::ws::Envelope;
use crate::common::{TestApp, start_agents};

async fn wakeups(chat: &TestApp) -> u64 {
    let metrics = metrics_page(&chat.http, &chat.url, None).await;
    metric(&metrics, "chat_socket_wakeups_total").map_or(0, |n| n as u64)
}

#[tokio::test]
async fn a_socket_on_one_conversation_is_not_woken_by_turns_or_tree_edits_in_another() {
    let mut stack = Stack::new();
    let agents = start_agents(0, &mut stack).await;
    let chat = TestApp::start(&agents, &mut stack, |_| {}).await;
    let mut on_a = chat.socket("usr-ada", "", false).await;
    on_a.init(json!({"agent_id": "tree"})).await;
    let mut on_b = chat.socket("usr-ada", "", false).await;
    let ready = on_b.init(json!({"agent_id": "math"})).await;
    let b = ready["session_id"].as_str().unwrap().to_owned();
    let before = wakeups(&chat).await;

    // Two turns in B, started over HTTP, and one tree edit over B's socket.
    for _ in 0..2 {
        let events = chat.turn("usr-ada", &b, "What is 6 * 7?").await;
        assert_eq!(events.last().unwrap()["status"], "complete");
        let frames = on_b.turn().await;
        assert_eq!(frames.last().unwrap()["data"]["status"], "complete");
    }
    let patch = json!([{"op": "add", "path": "/label", "value": "root"}]);
    on_b.send(json!({"type": "tree_edit", "data": {"patch": patch, "base_version": 0}}))
        .await;
    assert_eq!(on_b.json().await["type"], "tree_update");

    // A's socket is alive and has had time to be woken, had it been.
    on_a.send(json!({"type": "ping"})).await;
    assert_eq!(on_a.json().await["type"], "pong");
    tokio::time::sleep(Duration::from_millis(200)).await;

    // B's socket woke for each of B's three notices; A's for none.
    assert_eq!(wakeups(&chat).await - before, 3);
}
