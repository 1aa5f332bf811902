//! The seeds' own paths among the gateway's default routes (issue 17):
//! seed 000's `/api/chat/sessions…` and seed 003's `/api/v1/agent/chat…`,
//! through the gateway to the real chat-service, with the identity the
//! gateway injects. (What the seed forms say is tested in chat-service;
//! here, that the default routes lead there, for their owner only.)

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Stack, error_code, fetch_json, send, sse_events};

const QUESTION: &str = "What is 6 * 7?";

impl Stack {
    fn seed(&self, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.request(method, path).bearer_auth(token)
    }
}

/// How many messages a history page holds.
fn messages_in(history: &Value) -> usize {
    history["messages"].as_array().unwrap().len()
}

#[tokio::test]
async fn seed_000_sessions_are_default_routes_with_or_without_a_trailing_slash() {
    let stack = Stack::start().await;
    let ada = stack.user("ada").await;
    // Created with no body at all, as the seed's playground does.
    let created = send(stack.seed(Method::POST, "/api/chat/sessions/", &ada.token)).await;
    assert_eq!(created.status(), 201);
    let session: Value = created.json().await.unwrap();
    let id = session["id"].as_str().unwrap();

    for path in ["/api/chat/sessions", "/api/chat/sessions/"] {
        let list = fetch_json(stack.seed(Method::GET, path, &ada.token)).await;
        assert_eq!(list["items"][0]["id"], id, "{path}: {list}");
    }
    let stream = format!("/api/chat/sessions/{id}/messages/stream");
    let turn = stack.seed(Method::POST, &stream, &ada.token);
    let turn = send(turn.json(&json!({"message": QUESTION}))).await;
    assert_eq!(turn.status(), 200);
    let events = sse_events(turn).await;
    let text: String = events
        .iter()
        .filter(|(_, e)| e["type"] == "text_token")
        .map(|(_, e)| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "The answer is 42.");
    assert!(
        events.iter().all(|(_, e)| e["type"] != "text"),
        "{events:?}"
    );
    assert_eq!(events.last().unwrap().0, "2.end", "{events:?}");

    for path in [
        format!("/api/chat/sessions/{id}"),
        format!("/api/chat/sessions/{id}/"),
        format!("/api/chat/sessions/{id}/history"),
        format!("/api/chat/sessions/{id}/messages/"),
    ] {
        let response = send(stack.seed(Method::GET, &path, &ada.token)).await;
        assert_eq!(response.status(), 200, "{path}");
    }
    let history = format!("/api/chat/sessions/{id}/history");
    let history = fetch_json(stack.seed(Method::GET, &history, &ada.token)).await;
    assert_eq!(messages_in(&history), 2, "{history}");

    // Bob, and nobody, cannot reach it.
    let bob = stack.user("bob").await;
    let session = format!("/api/chat/sessions/{id}/");
    let response = send(stack.seed(Method::GET, &session, &bob.token)).await;
    assert_eq!(response.status(), 404);
    let response = send(stack.get(&format!("/api/chat/sessions/{id}"))).await;
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "unauthorized");

    let deleted = send(stack.seed(Method::DELETE, &session, &ada.token)).await;
    assert_eq!(deleted.status(), 204);
}

#[tokio::test]
async fn seed_003_agent_chat_is_a_default_route_that_continues_its_session() {
    let stack = Stack::start().await;
    let ada = stack.user("ada").await;
    let first = stack
        .seed(Method::POST, "/api/v1/agent/chat", &ada.token)
        .json(&json!({"message": QUESTION, "session_id": null, "character_id": 526379435}));
    let first = fetch_json(first).await;
    assert_eq!(first["status"], "idle", "{first}");
    let session_id = first["session_id"].as_str().unwrap();

    let streamed = stack.seed(Method::POST, "/api/v1/agent/chat/stream", &ada.token);
    let streamed =
        send(streamed.json(&json!({"message": QUESTION, "session_id": session_id}))).await;
    assert_eq!(streamed.status(), 200);
    let events = sse_events(streamed).await;
    let done = &events.last().unwrap().1;
    assert_eq!(done["type"], "done", "{events:?}");
    assert_eq!(done["session_id"], session_id);

    let history = format!("/api/v1/agent/chat/history/{session_id}");
    let last_three = format!("{history}?limit=3");
    let page = fetch_json(stack.seed(Method::GET, &last_three, &ada.token)).await;
    assert_eq!(page["session_id"], session_id);
    assert_eq!(page["message_count"], 4);
    assert_eq!(messages_in(&page), 3, "{page}");

    let bob = stack.user("bob").await;
    let response = send(stack.seed(Method::GET, &history, &bob.token)).await;
    assert_eq!(response.status(), 404);
    let response = stack.seed(Method::POST, "/api/v1/agent/chat", &bob.token);
    let response =
        send(response.json(&json!({"message": QUESTION, "session_id": session_id}))).await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "not_found");
}

#[tokio::test]
async fn seed_003_agent_chat_posts_count_against_the_chat_post_limit() {
    let stack = Stack::start_with(|settings| settings.rate_limits.chat_posts_per_minute = 1).await;
    let ada = stack.user("ada").await;
    let post = || {
        stack
            .seed(Method::POST, "/api/v1/agent/chat", &ada.token)
            .json(&json!({"message": ""}))
            .send()
    };
    // Refused by chat-service (empty), but counted at the gateway.
    assert_eq!(post().await.unwrap().status(), 422);
    let over = post().await.unwrap();
    assert_eq!(over.status(), 429);
    assert!(over.headers().contains_key("retry-after"));
}
