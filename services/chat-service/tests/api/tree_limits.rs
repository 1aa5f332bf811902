//! The tree's limits against a client that tries to blow the tree up
//! (DESIGN §14). Its own test binary, so the process's memory is this
//! test's alone and its growth can be read.

use std::collections::BTreeMap;

use confab_kit::testing::Stack;
use serde_json::{Value, json};

use crate::common::TestApp;

/// Resident memory of this process (the service runs in it), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// An add of an 8,000-character string, then `copies` copies of the array
/// holding it into itself: each copy doubles the tree.
fn doubling_patch(copies: usize) -> Value {
    let mut ops = vec![json!({"op": "add", "path": "/a", "value": ["x".repeat(8000)]})];
    ops.extend((0..copies).map(|_| json!({"op": "copy", "from": "/a", "path": "/a/-"})));
    Value::Array(ops)
}

#[tokio::test]
async fn a_tree_edit_that_doubles_the_tree_is_refused_before_memory_is_spent() {
    let mut stack = Stack::new();
    // No turn runs here: the agent only has to be registered.
    let agents = BTreeMap::from([("tree".to_owned(), "http://127.0.0.1:9/".to_owned())]);
    let chat = TestApp::start(&agents, &mut stack, |_| {}).await;
    let conversation = chat.conversation("usr-ada", "tree").await;

    let query = format!("?conversation_id={conversation}");
    let mut ws = chat.socket("usr-ada", &query, false).await;
    assert_eq!(ws.json().await["type"], "session_ready");
    assert_eq!(ws.json().await["type"], "chat_history");

    let before = rss_kib();
    let mut refused = Vec::new();
    for patch in [
        doubling_patch(25),
        doubling_patch(10),
        Value::Array(vec![json!({"op": "test", "path": "", "value": {}}); 101]),
    ] {
        ws.send(json!({"type": "tree_edit", "data": {"patch": patch, "base_version": 0}}))
            .await;
        let answer = ws.json().await;
        assert_eq!(answer["type"], "error", "{answer}");
        refused.push(answer["error"]["code"].as_str().unwrap().to_owned());
    }
    let grown_kib = rss_kib().saturating_sub(before);
    println!("resident memory grew by {grown_kib} KiB over the three frames");
    assert_eq!(
        refused,
        ["tree_too_large", "tree_too_large", "patch_too_large"]
    );
    // Without the limit the first frame asks for 8,000 × 2^25 bytes; with
    // it the tree never passes 256 KiB, and the process grows by a few MiB
    // at most (allocator slack, the frames themselves).
    assert!(grown_kib < 8 * 1024, "grew by {grown_kib} KiB");

    let read: Value = chat
        .get("usr-ada", &conversation)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["tree"], json!({}), "the tree is unchanged");
    assert_eq!(read["tree_version"], 0, "and so is its version");
}
