//! `GET /ws/chat` with a real WebSocket client, in front of the real demo
//! agents: both dialects, several tabs on one conversation, cancel, tree
//! edits, bad frames, auth and the heartbeat.

use std::collections::BTreeMap;
use std::time::Duration;

use confab_kit::testing::Stack;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::ws::{Envelope, Frame, Ws};
use crate::common::{TestApp, start_chat};

/// An envelope socket of `user`.
async fn connect(chat: &TestApp, user: &str, query: &str) -> Ws {
    chat.socket(user, query, false).await
}

/// The close code of a frame that is a close.
fn close_code(frame: Frame) -> Option<u16> {
    match frame {
        Frame::Closed(close) => close.map(|(code, _)| code),
        Frame::Json(_) => None,
    }
}

/// An envelope socket of `usr-ada` with a session begun by `init_session`
/// with `data`; the session's conversation.
async fn session(chat: &TestApp, data: Value) -> (Ws, String) {
    let mut ws = connect(chat, "usr-ada", "").await;
    let ready = ws.init(data).await;
    let conversation = ready["session_id"].as_str().unwrap().to_owned();
    (ws, conversation)
}

/// Another tab of `usr-ada` on `conversation`, after checking that it is
/// greeted with `session_ready` then `chat_history`; that history frame.
async fn join(chat: &TestApp, conversation: &str) -> (Ws, Value) {
    let query = format!("?conversation_id={conversation}");
    let mut tab = connect(chat, "usr-ada", &query).await;
    assert_eq!(tab.json().await["type"], "session_ready");
    let history = tab.json().await;
    assert_eq!(history["type"], "chat_history", "{history}");
    (tab, history)
}

/// Sends a `user_prompt` of `text`.
async fn prompt(ws: &mut Ws, text: &str) {
    ws.send(json!({"type": "user_prompt", "data": {"prompt": text}}))
        .await;
}

/// Sends a `tree_edit` of `patch` made against `base_version`.
async fn edit_tree(ws: &mut Ws, patch: &Value, base_version: u64) {
    ws.send(json!({"type": "tree_edit", "data": {"patch": patch, "base_version": base_version}}))
        .await;
}

/// The text of the chunks among `frames`.
fn chunks(frames: &[Value]) -> String {
    frames
        .iter()
        .filter(|f| f["type"] == "assistant_response" && f["data"]["chunk"] == true)
        .map(|f| f["data"]["text"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn envelope_session_streams_reasoning_and_chunks_then_the_whole_reply() {
    let (_stack, chat) = start_chat(0, |_| {}).await;
    let mut ws = connect(&chat, "usr-ada", "").await;

    let ready = ws.init(json!({})).await;
    let conversation = ready["data"]["session_id"].as_str().unwrap().to_owned();
    assert_eq!(ready["session_id"], conversation.as_str());
    assert_eq!(ready["data"]["agent_id"], "math");
    assert_eq!(ready["data"]["tree_version"], 0);
    assert!(ready["timestamp"].is_string());

    prompt(&mut ws, "What is 6 * 7?").await;
    let frames = ws.turn().await;
    let reasoning = frames.iter().position(|f| f["type"] == "reasoning");
    let first_chunk = frames
        .iter()
        .position(|f| f["type"] == "assistant_response")
        .unwrap();
    assert!(reasoning.is_some_and(|r| r < first_chunk), "{frames:?}");
    assert!(frames[reasoning.unwrap()]["data"]["steps"].is_array());
    let last = &frames.last().unwrap()["data"];
    assert_eq!(chunks(&frames), "The answer is 42.");
    assert_eq!(last["text"], "The answer is 42.");
    assert_eq!(last["status"], "complete");

    let messages = chat.messages("usr-ada", &conversation).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["id"], last["message_id"]);
    assert_eq!(messages[1]["content"], "The answer is 42.");

    // A new socket on the conversation gets its history.
    let (_again, history) = join(&chat, &conversation).await;
    assert_eq!(history["data"]["messages"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_second_tab_receives_the_events_of_a_turn_started_in_the_first() {
    let (_stack, chat) = start_chat(5, |_| {}).await;
    let (mut first, conversation) = session(&chat, json!({"agent_id": "math"})).await;
    let (mut second, _) = join(&chat, &conversation).await;

    prompt(&mut first, "What is 6 * 7?").await;
    let mine = first.turn().await;
    let theirs = second.turn().await;
    assert_eq!(chunks(&theirs), "The answer is 42.");
    assert_eq!(
        mine.last().unwrap()["data"]["message_id"],
        theirs.last().unwrap()["data"]["message_id"]
    );

    // A turn started over HTTP reaches both tabs too.
    let events = chat.turn("usr-ada", &conversation, "What is 6 * 7?").await;
    assert_eq!(events.last().unwrap()["status"], "complete");
    for tab in [&mut first, &mut second] {
        let frames = tab.turn().await;
        assert_eq!(frames.last().unwrap()["data"]["text"], "The answer is 42.");
    }
}

#[tokio::test]
async fn cancel_over_the_socket_ends_the_turn_canceled() {
    let (_stack, chat) = start_chat(40, |_| {}).await;
    let (mut ws, conversation) = session(&chat, json!({})).await;
    let words = vec!["word"; 100].join(" ");
    prompt(&mut ws, &words).await;
    let mut frames = ws.until(|f| f["type"] == "assistant_response").await;
    prompt(&mut ws, "and another").await;
    let refused = ws.until(|f| f["type"] == "error").await;
    assert_eq!(refused.last().unwrap()["error"]["code"], "turn_in_flight");
    frames.extend(refused.into_iter().filter(|f| f["type"] != "error"));
    ws.send(json!({"type": "cancel"})).await;
    frames.extend(ws.turn().await);
    let last = &frames.last().unwrap()["data"];
    assert_eq!(last["status"], "canceled");
    assert!(!frames.iter().any(|f| f["type"] == "error"), "{frames:?}");
    let partial = chunks(&frames);
    assert!(
        !partial.is_empty() && partial.len() < words.len(),
        "{partial:?}"
    );
    let messages = chat.messages("usr-ada", &conversation).await;
    assert_eq!(messages[1]["status"], "canceled");
    assert_eq!(messages[1]["content"], partial.as_str());

    // Nothing left to cancel.
    ws.send(json!({"type": "cancel"})).await;
    let refused = ws.json().await;
    assert_eq!(refused["error"]["code"], "no_turn_in_flight");
}

#[tokio::test]
async fn tree_edits_apply_at_the_current_version_and_stale_ones_are_refused() {
    let (_stack, chat) = start_chat(0, |_| {}).await;
    let mut ws = connect(&chat, "usr-ada", "").await;
    let ready = ws.init(json!({"agent_id": "tree"})).await;
    let conversation = ready["session_id"].as_str().unwrap().to_owned();
    assert_eq!(ready["data"]["initial_tree"], json!({}));

    let (mut other_tab, _) = join(&chat, &conversation).await;

    let patch = json!([{"op": "add", "path": "/label", "value": "root"}]);
    edit_tree(&mut ws, &patch, 0).await;
    let update = ws.json().await;
    assert_eq!(update["type"], "tree_update", "{update}");
    assert_eq!(update["data"]["version"], 1);
    assert_eq!(update["data"]["delta"], patch);
    let seen = other_tab.json().await;
    assert_eq!(seen["type"], "tree_update", "the other tab sees the edit");
    assert_eq!(seen["data"], update["data"]);

    let stale = json!([{"op": "add", "path": "/label", "value": "other"}]);
    edit_tree(&mut ws, &stale, 0).await;
    let refused = ws.json().await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["error"]["code"], "stale_tree");
    assert_eq!(refused["data"]["current_version"], 1);

    let bad = json!([{"op": "remove", "path": "/nothing/here"}]);
    edit_tree(&mut ws, &bad, 1).await;
    assert_eq!(ws.json().await["error"]["code"], "invalid_patch");

    let read = chat.read("usr-ada", &conversation).await;
    assert_eq!(read["tree"], json!({"label": "root"}));
    assert_eq!(read["tree_version"], 1);
}

/// The result of the compact dialect's `done`, the last of `frames`.
fn compact_done(frames: &[Value]) -> &Value {
    let done = frames.last().unwrap();
    assert_eq!(done["type"], "done", "{frames:?}");
    &done["result"]
}

#[tokio::test]
async fn compact_dialect_by_subprotocol_creates_a_conversation_and_counts_tools() {
    let (_stack, chat) = start_chat(0, |_| {}).await;
    let (mut ws, response) = chat
        .try_socket(Some("usr-ada"), "", Some("confab.compact.v1"))
        .await
        .unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "confab.compact.v1"
    );
    assert_eq!(ws.json().await["type"], "welcome");

    ws.send(json!({"type": "message", "text": "What is 6 * 7?"}))
        .await;
    let frames = ws.until(|f| f["type"] == "done").await;
    let tokens: String = frames
        .iter()
        .filter(|f| f["type"] == "token")
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert_eq!(tokens, "The answer is 42.");
    let result = compact_done(&frames);
    // As seed 001 has it: the tools by name, the calls counted.
    assert_eq!(result["tools_used"], json!(["calculator"]), "{result}");
    assert_eq!(result["tool_calls"], 1, "{result}");
    assert!(result["tokens_used"].as_u64().unwrap() > 0, "{result}");
    let conversation = result["conversation_id"].as_str().unwrap();
    let messages = chat.messages("usr-ada", conversation).await;
    assert_eq!(messages[1]["id"], result["message_id"]);

    ws.send(json!({"type": "hello"})).await;
    assert!(ws.json().await["error"].is_string());
}

#[tokio::test]
async fn compact_dialect_by_query_continues_the_given_conversation() {
    let (_stack, chat) = start_chat(0, |_| {}).await;
    let conversation = chat.conversation("usr-ada", "math").await;
    let query = format!("?dialect=compact&conversation_id={conversation}");
    let mut ws = connect(&chat, "usr-ada", &query).await;
    assert_eq!(ws.json().await["type"], "welcome");
    ws.send(json!({"type": "message", "text": "What is 6 * 7?"}))
        .await;
    let frames = ws.until(|f| f["type"] == "done").await;
    assert_eq!(
        compact_done(&frames)["conversation_id"],
        conversation.as_str()
    );
    assert_eq!(chat.messages("usr-ada", &conversation).await.len(), 2);
}

#[tokio::test]
async fn malformed_frames_are_answered_with_errors_and_the_socket_stays_open() {
    let (_stack, chat) = start_chat(0, |_| {}).await;
    let mut ws = connect(&chat, "usr-ada", "").await;

    prompt(&mut ws, "hi").await;
    assert_eq!(ws.json().await["error"]["code"], "no_session");
    ws.send_text("not json").await;
    assert_eq!(ws.json().await["error"]["code"], "invalid_frame");
    ws.send(json!({"type": "bogus"})).await;
    assert_eq!(ws.json().await["error"]["code"], "invalid_frame");
    ws.send(json!({"data": {}})).await;
    assert_eq!(ws.json().await["error"]["code"], "invalid_frame");
    ws.send_message(Message::binary(vec![1_u8, 2, 3])).await;
    assert_eq!(ws.json().await["error"]["code"], "invalid_frame");

    ws.init(json!({})).await;
    ws.send(json!({"type": "user_prompt", "data": {}})).await;
    assert_eq!(ws.json().await["error"]["code"], "invalid_frame");
    prompt(&mut ws, "   ").await;
    let empty = ws.json().await;
    assert_eq!(empty["type"], "error");
    assert!(empty["error"]["message"].is_string(), "{empty}");

    let oversized = "x".repeat(70 * 1024);
    ws.send(json!({"type": "ping"})).await;
    let pong = ws.json().await;
    assert_eq!(pong["type"], "pong");
    assert!(pong["session_id"].is_string());

    prompt(&mut ws, &oversized).await;
    assert_eq!(close_code(ws.frame().await), Some(1009));
}

#[tokio::test]
async fn close_session_closes_normally() {
    let (_stack, chat) = start_chat(0, |_| {}).await;
    let mut ws = connect(&chat, "usr-ada", "").await;
    ws.init(json!({})).await;
    ws.send(json!({"type": "close_session"})).await;
    assert_eq!(close_code(ws.frame().await), Some(1000));
}

#[tokio::test]
async fn init_session_continues_the_session_a_seed_004_client_names_by_session_id() {
    let (_stack, chat) = start_chat(0, |_| {}).await;
    let conversation = chat.conversation("usr-ada", "math").await;
    chat.turn("usr-ada", &conversation, "What is 6 * 7?").await;
    // Beside `data`, where seed 004 puts it, and inside it.
    for (turns_before, frame) in [
        (
            1,
            json!({"type": "init_session", "data": {}, "session_id": conversation}),
        ),
        (
            2,
            json!({"type": "init_session", "data": {"session_id": conversation}}),
        ),
    ] {
        let mut ws = connect(&chat, "usr-ada", "").await;
        ws.send(frame).await;
        let ready = ws.json().await;
        assert_eq!(ready["type"], "session_ready", "{ready}");
        assert_eq!(ready["data"]["session_id"], conversation.as_str());
        assert_eq!(ready["session_id"], conversation.as_str());
        let history = ws.json().await;
        assert_eq!(history["type"], "chat_history");
        let messages = history["data"]["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 2 * turns_before);
        // The seed's prompt carries the session id beside its data.
        ws.send(json!({
            "type": "user_prompt",
            "data": {"prompt": "again"},
            "session_id": conversation,
        }))
        .await;
        let frames = ws.turn().await;
        assert_eq!(frames.last().unwrap()["data"]["text"], "again");
    }
    // Someone else's session is not theirs to continue.
    let mut ws = connect(&chat, "usr-bob", "").await;
    ws.send(json!({"type": "init_session", "data": {}, "session_id": conversation}))
        .await;
    let error = ws.json().await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["error"]["code"], "not_found");
    // A session id that is not text is a bad frame, not a new session.
    ws.send(json!({"type": "init_session", "data": {"session_id": 7}}))
        .await;
    let error = ws.json().await;
    assert_eq!(error["error"]["code"], "invalid_frame", "{error}");
    assert_eq!(chat.messages("usr-ada", &conversation).await.len(), 6);
}

#[tokio::test]
async fn another_users_conversation_is_an_error_then_a_close() {
    let (_stack, chat) = start_chat(0, |_| {}).await;
    let conversation = chat.conversation("usr-ada", "math").await;
    for query in [
        format!("?conversation_id={conversation}"),
        format!("?dialect=compact&conversation_id={conversation}"),
    ] {
        let mut ws = connect(&chat, "usr-bob", &query).await;
        let error = ws.json().await;
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(close_code(ws.frame().await), Some(1008));
    }
}

#[tokio::test]
async fn an_unauthenticated_upgrade_is_refused_with_401() {
    let (_stack, chat) = start_chat(0, |_| {}).await;
    let refused = chat.try_socket(None, "", None).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401);
        }
        other => panic!("expected 401, got {:?}", other.map(|(_, r)| r.status())),
    }
}

#[tokio::test]
async fn a_silent_peer_is_dropped_and_an_answering_one_is_kept() {
    let (_stack, chat) = start_chat(0, |settings| settings.chat.ws_heartbeat_ms = 100).await;
    let mut silent = connect(&chat, "usr-ada", "").await;
    let mut answering = connect(&chat, "usr-ada", "").await;
    // Reading lets the client answer the server's pings.
    let kept = tokio::time::timeout(Duration::from_millis(800), answering.frame()).await;
    assert!(kept.is_err(), "nothing but pings: {kept:?}");
    answering.send(json!({"type": "ping"})).await;
    assert_eq!(answering.json().await["type"], "pong");

    // The silent one never read its pings.
    assert_eq!(close_code(silent.frame().await), Some(1001));
}

#[tokio::test]
async fn debug_frames_go_only_to_sockets_that_asked_for_them() {
    let mut stack = Stack::new();
    let unreachable = BTreeMap::from([("math".to_owned(), "http://127.0.0.1:1/".to_owned())]);
    let chat = TestApp::start(&unreachable, &mut stack, |_| {}).await;
    let (mut debugging, conversation) = session(&chat, json!({"debug": true})).await;
    let (mut plain, _) = join(&chat, &conversation).await;

    prompt(&mut debugging, "What is 6 * 7?").await;
    let frames = debugging.turn().await;
    let debug: Vec<&Value> = frames.iter().filter(|f| f["type"] == "debug").collect();
    assert_eq!(debug.len(), 2, "a retry each: {frames:?}");
    assert_eq!(debug[0]["data"]["level"], "warn");
    let error = frames.iter().find(|f| f["type"] == "error").unwrap();
    assert_eq!(error["error"]["code"], "agent_failed");
    assert_eq!(frames.last().unwrap()["data"]["status"], "failed");

    let seen = plain.turn().await;
    assert!(!seen.iter().any(|f| f["type"] == "debug"), "{seen:?}");
    assert!(seen.iter().any(|f| f["type"] == "error"), "{seen:?}");
}

#[tokio::test]
async fn an_agent_patch_made_stale_by_an_edit_is_refused_and_the_edit_stands() {
    // Slow chunks: the user's edit lands while the agent is still answering,
    // after it read the tree and before its patch arrives.
    let (_stack, chat) = start_chat(60, |_| {}).await;
    let (mut ws, conversation) = session(&chat, json!({"agent_id": "tree"})).await;
    let garden = json!({"id": "root", "label": "Garden", "children": [
        {"id": "fruits", "label": "Fruits", "children": [
            {"id": "apples", "label": "Apples", "children": []}
        ]},
        {"id": "veggies", "label": "Veggies", "children": []}
    ]});
    let setup = json!([{"op": "add", "path": "", "value": garden}]);
    edit_tree(&mut ws, &setup, 0).await;
    assert_eq!(ws.json().await["data"]["version"], 1);

    prompt(&mut ws, "move node apples under veggies").await;
    let mut frames = ws
        .until(|f| f["type"] == "assistant_response" && f["data"]["chunk"] == true)
        .await;
    let remove_apples = json!([{"op": "remove", "path": "/children/0/children/0"}]);
    edit_tree(&mut ws, &remove_apples, 1).await;
    frames.extend(ws.turn().await);

    let edit = frames.iter().find(|f| f["type"] == "tree_update").unwrap();
    assert_eq!(edit["data"]["version"], 2, "the user's edit: {frames:?}");
    let refused = frames.iter().find(|f| f["type"] == "error").unwrap();
    assert_eq!(refused["error"]["code"], "invalid_tree_patch", "{refused}");
    assert_eq!(
        frames.iter().filter(|f| f["type"] == "tree_update").count(),
        1,
        "the agent's patch is not announced"
    );

    let read = chat.read("usr-ada", &conversation).await;
    assert_eq!(read["tree_version"], 2, "the tree is as the user left it");
    assert_eq!(read["tree"]["children"][0]["children"], json!([]));
    assert_eq!(read["tree"]["children"][1]["children"], json!([]));
}
