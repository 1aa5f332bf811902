//! The seeds' own paths among the gateway's default routes (issue 17):
//! seed 000's `/api/chat/sessions…` and seed 003's `/api/v1/agent/chat…`,
//! through the gateway to the real chat-service, with the identity the
//! gateway injects. (What the seed forms say is tested in chat-service;
//! here, that the default routes lead there, for their owner only.)

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Stack, error_code, sse_events};

const QUESTION: &str = "What is 6 * 7?";

impl Stack {
    fn seed(&self, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.gateway))
            .bearer_auth(token)
    }
}

#[tokio::test]
async fn seed_000_sessions_are_default_routes_with_or_without_a_trailing_slash() {
    let stack = Stack::start().await;
    let ada = stack.user("ada").await;
    // Created with no body at all, as the seed's playground does.
    let created = stack
        .seed(Method::POST, "/api/chat/sessions/", &ada.token)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let session: Value = created.json().await.unwrap();
    let id = session["id"].as_str().unwrap();

    for path in ["/api/chat/sessions", "/api/chat/sessions/"] {
        let list: Value = stack
            .seed(Method::GET, path, &ada.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list["items"][0]["id"], id, "{path}: {list}");
    }
    let turn = stack
        .seed(
            Method::POST,
            &format!("/api/chat/sessions/{id}/messages/stream"),
            &ada.token,
        )
        .json(&json!({"message": QUESTION}))
        .send()
        .await
        .unwrap();
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
        let response = stack
            .seed(Method::GET, &path, &ada.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let history: Value = stack
        .seed(
            Method::GET,
            &format!("/api/chat/sessions/{id}/history"),
            &ada.token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        2,
        "{history}"
    );

    // Bob, and nobody, cannot reach it.
    let bob = stack.user("bob").await;
    let response = stack
        .seed(
            Method::GET,
            &format!("/api/chat/sessions/{id}/"),
            &bob.token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = stack
        .http
        .get(format!("{}/api/chat/sessions/{id}", stack.gateway))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "unauthorized");

    let deleted = stack
        .seed(
            Method::DELETE,
            &format!("/api/chat/sessions/{id}/"),
            &ada.token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
}

#[tokio::test]
async fn seed_003_agent_chat_is_a_default_route_that_continues_its_session() {
    let stack = Stack::start().await;
    let ada = stack.user("ada").await;
    let first: Value = stack
        .seed(Method::POST, "/api/v1/agent/chat", &ada.token)
        .json(&json!({"message": QUESTION, "session_id": null, "character_id": 526379435}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["status"], "idle", "{first}");
    let session_id = first["session_id"].as_str().unwrap();

    let streamed = stack
        .seed(Method::POST, "/api/v1/agent/chat/stream", &ada.token)
        .json(&json!({"message": QUESTION, "session_id": session_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 200);
    let events = sse_events(streamed).await;
    let done = &events.last().unwrap().1;
    assert_eq!(done["type"], "done", "{events:?}");
    assert_eq!(done["session_id"], session_id);

    let history: Value = stack
        .seed(
            Method::GET,
            &format!("/api/v1/agent/chat/history/{session_id}?limit=3"),
            &ada.token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["session_id"], session_id);
    assert_eq!(history["message_count"], 4);
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        3,
        "{history}"
    );

    let bob = stack.user("bob").await;
    let response = stack
        .seed(
            Method::GET,
            &format!("/api/v1/agent/chat/history/{session_id}"),
            &bob.token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = stack
        .seed(Method::POST, "/api/v1/agent/chat", &bob.token)
        .json(&json!({"message": QUESTION, "session_id": session_id}))
        .send()
        .await
        .unwrap();
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
