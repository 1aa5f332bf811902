//! Fuzzing `/ws/chat` over a real socket, in both dialects: arbitrary text,
//! arbitrary JSON and mutated valid frames. Whatever a client sends, every
//! answer is a JSON frame, none is an internal error, and the socket keeps
//! serving (it answers a ping afterwards). See `confab_kit::fuzz` for how
//! to run this longer.

use std::collections::BTreeMap;
use std::time::Duration;

use confab_kit::fuzz;
use confab_kit::testing::Stack;
use serde_json::Value;

use crate::common::TestApp;
use crate::common::ws::{Frame, Ws};

/// Valid frames of the envelope dialect (DESIGN §9); `close_session` is
/// left out (it ends the socket, which mutations reach anyway).
const ENVELOPE: &[&str] = &[
    r#"{"type":"init_session","data":{"agent_id":"math"}}"#,
    r#"{"type":"init_session","data":{"conversation_id":"conv-0000"}}"#,
    r#"{"type":"user_prompt","data":{"prompt":"What is 6 * 7?"}}"#,
    r#"{"type":"cancel","data":{}}"#,
    r#"{"type":"tree_edit","data":{"patch":[{"op":"add","path":"/a","value":{"b":[1,2]}}],"base_version":0}}"#,
    r#"{"type":"tree_edit","data":{"patch":[{"op":"copy","from":"/a","path":"/a/b/-"}],"base_version":1}}"#,
    r#"{"type":"ping"}"#,
];

/// Valid frames of the compact dialect.
const COMPACT_FRAMES: &[&str] = &[
    r#"{"type":"message","text":"What is 6 * 7?"}"#,
    r#"{"type":"ping"}"#,
];

/// Sends every fuzz input on one socket (a new one after a close), then
/// checks the socket still answers a ping with a pong.
async fn fuzz_dialect(chat: &TestApp, compact: bool, samples: &[&str]) {
    let samples = samples.iter().map(|s| (*s).to_owned()).collect();
    let mut ws = chat.socket("usr-fuzz", "", compact).await;
    let mut sent = 0usize;
    for text in fuzz::inputs(fuzz::client_text(samples)) {
        ws.send_text(&text).await;
        sent += 1;
        // Whatever came back so far: frames, or a close after a mutated
        // close_session.
        while let Ok(received) = tokio::time::timeout(Duration::from_millis(5), ws.frame()).await {
            match received {
                Frame::Json(frame) => check(&frame, &text),
                Frame::Closed(close) => {
                    assert_eq!(close.map(|(code, _)| code), Some(1000), "after {text:?}");
                    ws = chat.socket("usr-fuzz", "", compact).await;
                }
            }
        }
    }
    assert!(sent > 0);
    assert_pong(&mut ws).await;
}

/// A frame the server answered: JSON, and never an internal error.
fn check(frame: &Value, after: &str) {
    let code = match &frame["error"] {
        Value::Object(error) => error.get("code").cloned(),
        Value::String(_) => frame.get("code").cloned(),
        _ => None,
    };
    assert_ne!(
        code.as_ref().and_then(Value::as_str),
        Some("internal"),
        "{frame} after {after:?}"
    );
}

/// Sends a ping and waits for the pong among whatever else comes.
async fn assert_pong(ws: &mut Ws) {
    ws.send_text(r#"{"type":"ping"}"#).await;
    loop {
        match ws.frame().await {
            Frame::Json(frame) if frame["type"] == "pong" => return,
            Frame::Json(frame) => check(&frame, "the final ping"),
            Frame::Closed(close) => panic!("the socket closed ({close:?})"),
        }
    }
}

#[tokio::test]
async fn fuzz_chat_socket_frames_get_clear_answers_in_both_dialects() {
    let mut stack = Stack::new();
    // Turns started by the fuzzer fail fast: nothing listens on port 9.
    let agents = BTreeMap::from([("math".to_owned(), "http://127.0.0.1:9/".to_owned())]);
    let chat = TestApp::start(&agents, &mut stack, |s| s.a2a.max_attempts = 1).await;
    fuzz_dialect(&chat, false, ENVELOPE).await;
    fuzz_dialect(&chat, true, COMPACT_FRAMES).await;
}
