//! Personal API keys (issue 21): made, listed and revoked by a signed-in
//! user; accepted as `Authorization: Bearer cfk_…` on the proxied routes
//! and `/auth/me` within their scopes, over HTTP and WebSocket; refused on
//! their next use once revoked or expired.

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::common::ws::{connect, try_connect};
use crate::common::{Stack, User, error_code, fetch_json, llm_calls_of, send};

/// `POST /api/v1/api-keys` as `user` with `body`.
async fn create_key(stack: &Stack, user: &User, body: Value) -> reqwest::Response {
    send(
        stack
            .post("/api/v1/api-keys")
            .bearer_auth(&user.token)
            .json(&body),
    )
    .await
}

/// A new key of `user` with `scopes`: the user as the key presents her.
async fn key_of(stack: &Stack, user: &User, scopes: &[&str]) -> User {
    let created = create_key(stack, user, json!({"name": "script", "scopes": scopes})).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    User {
        id: user.id.clone(),
        token: created["key"].as_str().unwrap().to_owned(),
        refresh_token: String::new(),
    }
}

async fn list_keys(stack: &Stack, user: &User) -> Vec<Value> {
    let list = fetch_json(stack.get("/api/v1/api-keys").bearer_auth(&user.token)).await;
    list["items"].as_array().unwrap().clone()
}

/// The id of `user`'s newest key.
async fn newest_key_id(stack: &Stack, user: &User) -> String {
    list_keys(stack, user).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `DELETE /api/v1/api-keys/{id}` as `user`.
async fn revoke_key(stack: &Stack, user: &User, id: &str) -> reqwest::Response {
    send(
        stack
            .request(reqwest::Method::DELETE, &format!("/api/v1/api-keys/{id}"))
            .bearer_auth(&user.token),
    )
    .await
}

async fn status_of(request: reqwest::RequestBuilder) -> u16 {
    send(request).await.status().as_u16()
}

#[tokio::test]
async fn a_key_is_shown_once_listed_by_its_prefix_and_runs_a_turn_as_its_user() {
    let stack = Stack::start().await;
    let ada = stack.user("ada").await;

    let created = create_key(
        &stack,
        &ada,
        json!({"name": " laptop script ", "scopes": ["chat", "read", "chat"], "expires_in": 3600}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("cfk_") && key.len() == 47, "{created}");
    assert!(key[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(created["prefix"], key[..12]);
    assert_eq!(created["name"], "laptop script");
    assert_eq!(created["scopes"], json!(["chat", "read"]));
    assert!(created["expires_at"].is_string(), "{created}");
    assert!(created["last_used_at"].is_null(), "{created}");

    let listed = list_keys(&stack, &ada).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], created["id"]);
    assert_eq!(listed[0]["prefix"], created["prefix"]);
    assert!(listed[0].get("key").is_none(), "{}", listed[0]);
    assert!(
        !listed[0].to_string().contains(&key[12..]),
        "the list shows the key"
    );

    let by_key = User {
        id: ada.id.clone(),
        token: key.to_owned(),
        refresh_token: String::new(),
    };
    let me = fetch_json(stack.get("/api/v1/auth/me").bearer_auth(key)).await;
    assert_eq!(me["username"], "ada");
    let conversation = stack.conversation(&by_key).await;
    let events =
        crate::common::sse_events(stack.post_stream(&by_key, &conversation, "hi").await).await;
    let done = &events.last().unwrap().1;
    assert_eq!(done["type"], "done", "{events:?}");
    assert_eq!(done["status"], "complete", "{done}");
    // The conversation is ada's: her session token reads the same reply.
    let messages = stack.message_items(&ada, &conversation).await;
    assert_eq!(messages.len(), 2);

    let listed = list_keys(&stack, &ada).await;
    assert!(listed[0]["last_used_at"].is_string(), "{}", listed[0]);
}

#[tokio::test]
async fn a_revoked_key_is_refused_on_its_next_use_and_gone_from_the_list() {
    let stack = Stack::start().await;
    let ada = stack.user("ada").await;
    let key = key_of(&stack, &ada, &["chat"]).await;
    let id = newest_key_id(&stack, &ada).await;
    assert_eq!(
        status_of(stack.get("/api/v1/conversations").bearer_auth(&key.token)).await,
        200
    );

    let revoked = revoke_key(&stack, &ada, &id).await;
    assert_eq!(revoked.status(), 204);

    let refused = send(stack.get("/api/v1/conversations").bearer_auth(&key.token)).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(error_code(refused).await, "unauthorized");
    match try_connect(&format!("{}/ws/chat", stack.gateway), Some(&key.token)).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected a 401 handshake, got {:?}", other.map(|_| ())),
    }
    assert!(list_keys(&stack, &ada).await.is_empty());
    let again = revoke_key(&stack, &ada, &id).await;
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let stack = Stack::start().await;
    let ada = stack.user("ada").await;
    let created = create_key(
        &stack,
        &ada,
        json!({"name": "brief", "scopes": ["read"], "expires_in": 1}),
    )
    .await;
    let key = created.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let refused = send(stack.get("/api/v1/conversations").bearer_auth(&key)).await;
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn a_key_may_do_what_its_scopes_allow_and_nothing_else() {
    let stack = Stack::start().await;
    let ada = stack.user("ada").await;
    let read = key_of(&stack, &ada, &["read"]).await;
    let chat = key_of(&stack, &ada, &["chat"]).await;
    let llm = key_of(&stack, &ada, &["llm"]).await;

    // read: any GET, nothing else.
    assert_eq!(
        status_of(stack.get("/api/v1/conversations").bearer_auth(&read.token)).await,
        200
    );
    assert_eq!(
        status_of(stack.get("/api/v1/llm-calls").bearer_auth(&read.token)).await,
        200
    );
    let refused = stack.create_conversation(&read, json!({})).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(error_code(refused).await, "insufficient_scope");
    match try_connect(&format!("{}/ws/chat", stack.gateway), Some(&read.token)).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected a 403 handshake, got {:?}", other.map(|_| ())),
    }

    // chat: the chat routes, over HTTP and WebSocket; not the LLM routes.
    assert_eq!(
        stack.create_conversation(&chat, json!({})).await.status(),
        201
    );
    let mut ws = connect(&format!("{}/ws/chat", stack.gateway), Some(&chat.token)).await;
    ws.send(json!({"type": "init_session", "data": {}})).await;
    assert_eq!(ws.json().await["type"], "session_ready");
    let refused = send(stack.get("/api/v1/llm-calls").bearer_auth(&chat.token)).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(error_code(refused).await, "insufficient_scope");

    // llm: the LLM routes; not the chat ones.
    assert_eq!(
        status_of(stack.get("/api/v1/llm-calls").bearer_auth(&llm.token)).await,
        200
    );
    assert_eq!(
        status_of(stack.get("/api/v1/conversations").bearer_auth(&llm.token)).await,
        403
    );
}

#[tokio::test]
async fn a_key_cannot_manage_keys_or_administer() {
    let stack = Stack::start_with_admin().await;
    let admin = User {
        id: String::new(),
        token: stack.admin_token().await,
        refresh_token: String::new(),
    };
    let key = key_of(&stack, &admin, &["chat", "llm", "read"]).await;
    for request in [
        stack.get("/api/v1/api-keys"),
        stack
            .post("/api/v1/api-keys")
            .json(&json!({"name": "more", "scopes": ["chat"]})),
        stack.get("/api/v1/admin/signing-keys"),
        stack.post("/api/v1/admin/signing-keys"),
    ] {
        let refused = send(request.bearer_auth(&key.token)).await;
        assert_eq!(refused.status(), 403);
        assert_eq!(error_code(refused).await, "api_key_not_allowed");
    }
    assert_eq!(list_keys(&stack, &admin).await.len(), 1);
}

#[tokio::test]
async fn bad_key_requests_get_clear_errors_and_make_no_key() {
    let stack = Stack::start().await;
    let ada = stack.user("ada").await;
    let long_name = "n".repeat(65);
    let cases: [(&str, &str, u16, &str); 11] = [
        ("empty", "", 400, "malformed_json"),
        ("not JSON", "{name: ", 400, "malformed_json"),
        ("not an object", "[1]", 422, "invalid_body"),
        ("no scopes", r#"{"name": "x"}"#, 422, "invalid_body"),
        (
            "empty scopes",
            r#"{"name": "x", "scopes": []}"#,
            422,
            "invalid_body",
        ),
        (
            "unknown scope",
            r#"{"name": "x", "scopes": ["admin"]}"#,
            422,
            "invalid_body",
        ),
        (
            "blank name",
            r#"{"name": "  ", "scopes": ["chat"]}"#,
            422,
            "invalid_body",
        ),
        (
            "zero lifetime",
            r#"{"name": "x", "scopes": ["chat"], "expires_in": 0}"#,
            422,
            "invalid_body",
        ),
        (
            "negative lifetime",
            r#"{"name": "x", "scopes": ["chat"], "expires_in": -5}"#,
            422,
            "invalid_body",
        ),
        (
            "lifetime past ten years",
            r#"{"name": "x", "scopes": ["chat"], "expires_in": 999999999999}"#,
            422,
            "invalid_body",
        ),
        ("name of 65 characters", "LONG", 422, "invalid_body"),
    ];
    for (case, body, status, code) in cases {
        let body = if body == "LONG" {
            json!({"name": long_name, "scopes": ["chat"]}).to_string()
        } else {
            body.to_owned()
        };
        let response = send(
            stack
                .post("/api/v1/api-keys")
                .bearer_auth(&ada.token)
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(response.status(), status, "{case}");
        assert_eq!(error_code(response).await, code, "{case}");
    }
    let oversized = send(
        stack
            .post("/api/v1/api-keys")
            .bearer_auth(&ada.token)
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"name": "{}", "scopes": ["chat"]}}"#,
                "x".repeat(2 << 20)
            )),
    )
    .await;
    assert_eq!(oversized.status(), 413);
    let anonymous = send(
        stack
            .post("/api/v1/api-keys")
            .json(&json!({"name": "x", "scopes": ["chat"]})),
    )
    .await;
    assert_eq!(anonymous.status(), 401);
    assert!(list_keys(&stack, &ada).await.is_empty());
}

#[tokio::test]
async fn malformed_and_unknown_keys_are_refused() {
    let stack = Stack::start().await;
    let ada = stack.user("ada").await;
    let real = key_of(&stack, &ada, &["read"]).await.token;
    let unknown = format!("{}{}", &real[..12], "A".repeat(35));
    for key in [
        "cfk_".to_owned(),
        "cfk_short".to_owned(),
        format!("{real}A"),
        format!("{}é", &real[..46]),
        unknown,
    ] {
        let refused = send(stack.get("/api/v1/conversations").bearer_auth(&key)).await;
        assert_eq!(refused.status(), 401, "{key}");
    }
}

#[tokio::test]
async fn another_users_keys_are_neither_listed_nor_revoked() {
    let stack = Stack::start().await;
    let ada = stack.user("ada").await;
    let bob = stack.user("bob").await;
    let key = key_of(&stack, &ada, &["read"]).await;
    let id = newest_key_id(&stack, &ada).await;

    assert!(list_keys(&stack, &bob).await.is_empty());
    let refused = revoke_key(&stack, &bob, &id).await;
    assert_eq!(refused.status(), 404);
    assert_eq!(
        status_of(stack.get("/api/v1/conversations").bearer_auth(&key.token)).await,
        200
    );
}

#[tokio::test]
async fn a_user_holds_at_most_the_configured_number_of_keys() {
    let stack = Stack::start_with(|settings| settings.limits.api_keys_per_user = 2).await;
    let ada = stack.user("ada").await;
    key_of(&stack, &ada, &["chat"]).await;
    key_of(&stack, &ada, &["chat"]).await;
    let refused = create_key(&stack, &ada, json!({"name": "third", "scopes": ["chat"]})).await;
    assert_eq!(refused.status(), 409);
    assert_eq!(error_code(refused).await, "too_many_api_keys");
    // A revoked key frees its place.
    let id = newest_key_id(&stack, &ada).await;
    revoke_key(&stack, &ada, &id).await;
    assert_eq!(
        create_key(&stack, &ada, json!({"name": "third", "scopes": ["chat"]}))
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn an_llm_key_calls_the_llm_proxys_models_as_its_user_and_its_body_goes_as_sent() {
    let stack = Stack::start().await;
    let ada = stack.user("ada").await;
    let llm = key_of(&stack, &ada, &["llm"]).await;
    let chat = key_of(&stack, &ada, &["chat"]).await;

    let models = fetch_json(stack.get("/api/v1/llm/models").bearer_auth(&llm.token)).await;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(ids.contains(&"builtin"), "{models}");

    // A client's own `_auth` is data on this route: identity travels in
    // the gateway's headers, so it names ada whatever the body says.
    let body = json!({
        "model": "builtin",
        "messages": [{"role": "user", "content": "hello through the gateway"}],
        "_auth": {"user_id": "usr-mallory", "role": "admin"},
    });
    let completion = fetch_json(
        stack
            .post("/api/v1/llm/chat/completions")
            .bearer_auth(&llm.token)
            .json(&body),
    )
    .await;
    assert_eq!(completion["object"], "chat.completion", "{completion}");

    let calls = llm_calls_of(&stack.llm_db, &ada.id, 1).await;
    assert_eq!(calls.len(), 1, "the call is not ada's");
    let recorded: Value = serde_json::from_str(&calls[0].request).unwrap();
    assert_eq!(recorded["_auth"]["user_id"], "usr-mallory", "{recorded}");
    assert_eq!(
        status_of(stack.get("/api/v1/llm-calls").bearer_auth(&llm.token)).await,
        200
    );

    let refused = send(
        stack
            .post("/api/v1/llm/chat/completions")
            .bearer_auth(&chat.token)
            .json(&body),
    )
    .await;
    assert_eq!(refused.status(), 403);
    assert_eq!(error_code(refused).await, "insufficient_scope");
}
