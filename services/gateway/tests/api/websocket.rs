//! WebSockets through the front door: client → gateway → chat-service (or
//! llm-proxy-service), and client → dashboard-proxy → gateway → …, with a
//! real WebSocket client and the real services.

use serde_json::json;
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::common::Stack;
use crate::common::ws::{Frame, connect, try_connect};

fn final_reply(frame: &serde_json::Value) -> bool {
    frame["type"] == "assistant_response" && frame["data"]["chunk"] == false
}

#[tokio::test]
async fn a_turn_runs_through_the_gateway_in_both_dialects() {
    let stack = Stack::start().await;
    let user = stack.user("ada").await;

    // Envelope dialect, token in the Authorization header.
    let mut ws = connect(&format!("{}/ws/chat", stack.gateway), Some(&user.token)).await;
    ws.send(json!({"type": "init_session", "data": {}})).await;
    let ready = ws.json().await;
    assert_eq!(ready["type"], "session_ready", "{ready}");
    let conversation = ready["data"]["session_id"].as_str().unwrap().to_owned();
    assert_eq!(ws.json().await["type"], "chat_history");
    ws.send(json!({"type": "user_prompt", "data": {"prompt": "What is 6 * 7?"}}))
        .await;
    let frames = ws.until(final_reply).await;
    let reply = frames.last().unwrap();
    assert!(
        reply["data"]["text"].as_str().unwrap().contains("42"),
        "{reply}"
    );

    // Compact dialect, token in the query (as browsers must send it).
    let url = format!(
        "{}/ws/chat?dialect=compact&conversation_id={conversation}&token={}",
        stack.gateway, user.token
    );
    let mut compact = connect(&url, None).await;
    assert_eq!(compact.json().await["type"], "welcome");
    compact
        .send(json!({"type": "message", "text": "What is 2 + 3?"}))
        .await;
    let frames = compact.until(|f| f["type"] == "done").await;
    let done = frames.last().unwrap();
    assert_eq!(done["result"]["conversation_id"], conversation.as_str());

    // Both turns are in the conversation, as its owner reads it over REST.
    let messages = stack.message_items(&user, &conversation).await;
    assert_eq!(messages.len(), 4);
}

#[tokio::test]
async fn a_turn_runs_through_dashboard_proxy_with_the_token_in_the_query() {
    let stack = Stack::start().await;
    let user = stack.user("ada").await;
    for dialect in ["envelope", "compact"] {
        let url = format!(
            "{}/ws/chat?dialect={dialect}&token={}",
            stack.dashboard, user.token
        );
        let mut ws = connect(&url, None).await;
        if dialect == "compact" {
            assert_eq!(ws.json().await["type"], "welcome");
            ws.send(json!({"type": "message", "text": "What is 6 * 7?"}))
                .await;
            let frames = ws.until(|f| f["type"] == "done").await;
            assert!(frames.iter().any(|f| f["type"] == "token"), "{frames:?}");
        } else {
            ws.send(json!({"type": "init_session", "data": {}})).await;
            assert_eq!(ws.json().await["type"], "session_ready");
            assert_eq!(ws.json().await["type"], "chat_history");
            ws.send(json!({"type": "user_prompt", "data": {"prompt": "What is 6 * 7?"}}))
                .await;
            let frames = ws.until(final_reply).await;
            assert!(
                frames.last().unwrap()["data"]["text"]
                    .as_str()
                    .unwrap()
                    .contains("42")
            );
        }
    }
}

#[tokio::test]
async fn closing_either_end_closes_the_other_with_the_same_code() {
    let stack = Stack::start().await;
    let user = stack.user("ada").await;
    // The envelope dialect, named: dashboard-proxy's default is seed 001's.
    let url = format!(
        "{}/ws/chat?dialect=envelope&token={}",
        stack.dashboard, user.token
    );

    // The client closes: chat-service answers the close with the client's
    // own code and reason, which come back through both hops.
    let mut ws = connect(&url, None).await;
    ws.send(json!({"type": "init_session", "data": {}})).await;
    assert_eq!(ws.json().await["type"], "session_ready");
    ws.close(4000, "bye").await;
    assert_eq!(ws.closed().await, Some((4000, "bye".to_owned())));

    // chat-service closes: its code reaches the client unchanged.
    let mut ws = connect(&url, None).await;
    ws.send(json!({"type": "close_session"})).await;
    assert_eq!(ws.closed().await.map(|c| c.0), Some(1000));
    let mut ws = connect(&url, None).await;
    ws.send_text(&"x".repeat(70 * 1024)).await;
    assert_eq!(ws.closed().await.map(|c| c.0), Some(1009));
}

#[tokio::test]
async fn a_websocket_without_a_valid_token_is_refused() {
    let stack = Stack::start().await;
    for token in [None, Some("not-a-token")] {
        let url = match token {
            Some(token) => format!("{}/ws/chat?token={token}", stack.gateway),
            None => format!("{}/ws/chat", stack.gateway),
        };
        match try_connect(&url, None).await {
            Err(WsError::Http(response)) => assert_eq!(response.status(), 401),
            other => panic!("expected a 401 handshake, got {:?}", other.map(|_| ())),
        }
        let url = url.replace(&stack.gateway, &stack.dashboard);
        let mut ws = connect(&url, None).await;
        match ws.frame().await {
            Frame::Closed(Some((code, _))) => assert_eq!(code, 4401),
            other => panic!("expected close 4401, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn another_users_conversation_is_refused_over_the_gateway() {
    let stack = Stack::start().await;
    let ada = stack.user("ada").await;
    let bob = stack.user("bob").await;
    let conversation = stack.conversation(&ada).await;
    let url = format!("{}/ws/chat?conversation_id={conversation}", stack.gateway);
    let mut ws = connect(&url, Some(&bob.token)).await;
    let error = ws.json().await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(ws.closed().await.map(|c| c.0), Some(1008));
}

#[tokio::test]
async fn the_live_trace_is_reached_through_the_gateway() {
    let stack = Stack::start().await;
    let user = stack.user("ada").await;
    let mut trace = connect(
        &format!("{}/ws/trace/math", stack.gateway),
        Some(&user.token),
    )
    .await;
    trace.until(|f| f["type"] == "live").await;
    let conversation = stack.conversation(&user).await;
    crate::common::sse_events(
        stack
            .post_stream(&user, &conversation, "What is 6 * 7?")
            .await,
    )
    .await;
    let frames = trace.until(|f| f["event"]["kind"] == "llm.response").await;
    let first = &frames[0]["event"];
    assert_eq!(first["kind"], "llm.request", "{frames:?}");
    assert_eq!(first["user_id"], user.id.as_str());
    assert_eq!(first["conversation_id"], conversation.as_str());
}

#[tokio::test]
async fn sockets_past_a_users_caps_are_refused_through_the_gateway() {
    let stack = Stack::start().await;
    let user = stack.user("ada").await;
    let other = stack.user("bob").await;

    // chat-service's [limits] sockets_per_user: 16; the 17th is closed.
    let chat = format!("{}/ws/chat", stack.gateway);
    let mut open = Vec::new();
    for _ in 0..16 {
        open.push(connect(&chat, Some(&user.token)).await);
    }
    let mut seventeenth = connect(&chat, Some(&user.token)).await;
    match seventeenth.frame().await {
        Frame::Closed(Some((code, reason))) => {
            assert_eq!(code, 1008);
            assert!(reason.contains("16"), "{reason}");
        }
        other => panic!("expected close 1008, got {other:?}"),
    }
    let mut bobs = connect(&chat, Some(&other.token)).await;
    bobs.send(json!({"type": "ping"})).await;
    assert_eq!(bobs.json().await["type"], "pong", "another user is served");

    // llm-proxy-service's [trace] subscribers_per_user: 8; the 9th is 429.
    let trace = format!("{}/ws/trace/math", stack.gateway);
    for _ in 0..8 {
        open.push(connect(&trace, Some(&user.token)).await);
    }
    match try_connect(&trace, Some(&user.token)).await {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status(), 429);
            assert!(response.headers().contains_key("retry-after"));
        }
        other => panic!("expected a 429 handshake, got {:?}", other.map(|_| ())),
    }
}
