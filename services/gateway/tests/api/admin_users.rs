//! User administration (issue 21): admins list, search, disable, enable,
//! promote, reset and delete users; a disabled user is refused everywhere
//! within seconds; users change their own password and end their sessions.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{
    ADMIN_NAME, Stack, USER_PASSWORD, User, error_code, fetch_json, llm_calls_of, send,
};

/// A request to `path` as the bearer of `token`.
fn as_bearer(stack: &Stack, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    stack.request(method, path).bearer_auth(token)
}

/// `PATCH /api/v1/admin/users/{id}` with `body`.
async fn patch_user(stack: &Stack, admin: &str, id: &str, body: Value) -> reqwest::Response {
    send(
        as_bearer(
            stack,
            admin,
            Method::PATCH,
            &format!("/api/v1/admin/users/{id}"),
        )
        .json(&body),
    )
    .await
}

/// The status of `GET {base}{path}` with `token` as bearer (a direct call
/// to a service behind the gateway).
async fn direct_status(stack: &Stack, base: &str, path: &str, token: &str) -> u16 {
    stack
        .http
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// How long until `GET {base}{path}` with `token` is refused with 401
/// (polled every 100 ms, for at most 10 s).
async fn refused_after(stack: &Stack, base: &str, path: &str, token: &str) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if direct_status(stack, base, path, token).await == 401 {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{base}{path} still accepts the token after 10 s");
}

#[tokio::test]
async fn a_user_who_is_not_an_admin_is_refused_on_every_admin_endpoint() {
    let stack = Stack::start_with_admin().await;
    let ada = stack.user("ada").await;
    let bob = stack.user("bob").await;
    let admin = stack.admin_token().await;
    let admin_key = fetch_json(
        as_bearer(&stack, &admin, Method::POST, "/api/v1/api-keys")
            .json(&json!({"name": "ops", "scopes": ["chat", "llm", "read"]})),
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let endpoints = [
        (Method::GET, "/api/v1/admin/users".to_owned(), None),
        (Method::GET, format!("/api/v1/admin/users/{}", bob.id), None),
        (
            Method::PATCH,
            format!("/api/v1/admin/users/{}", bob.id),
            Some(json!({"disabled": true})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/users/{}", bob.id),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/admin/users/{}/password", bob.id),
            Some(json!({"password": "a brand new password"})),
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{}/budget", bob.id),
            Some(json!({"period": "day", "tokens": 1, "cost": null})),
        ),
        (
            Method::PUT,
            "/api/v1/admin/api-keys/key-x/budget".to_owned(),
            Some(json!({"period": "day", "tokens": 1, "cost": null})),
        ),
        (Method::GET, "/api/v1/admin/audit".to_owned(), None),
        (Method::GET, "/api/v1/admin/audit/export".to_owned(), None),
        (Method::GET, "/api/v1/admin/signing-keys".to_owned(), None),
        (Method::POST, "/api/v1/admin/signing-keys".to_owned(), None),
    ];
    for (method, path, body) in endpoints {
        let with_body = |request: reqwest::RequestBuilder| match &body {
            Some(body) => request.json(body),
            None => request,
        };
        let case = format!("{method} {path}");
        let as_user = send(with_body(as_bearer(
            &stack,
            &ada.token,
            method.clone(),
            &path,
        )))
        .await;
        assert_eq!(as_user.status(), 403, "{case}");
        assert_eq!(error_code(as_user).await, "forbidden", "{case}");
        let anonymous = send(with_body(stack.request(method.clone(), &path))).await;
        assert_eq!(anonymous.status(), 401, "{case}");
        let by_key = send(with_body(as_bearer(
            &stack,
            &admin_key,
            method.clone(),
            &path,
        )))
        .await;
        assert_eq!(by_key.status(), 403, "{case}");
        assert_eq!(error_code(by_key).await, "api_key_not_allowed", "{case}");
    }
    // Nothing was done to bob.
    assert_eq!(stack.me(&bob.token).await.status(), 200);
    // The services' revocation list is theirs alone.
    let list = send(as_bearer(
        &stack,
        &ada.token,
        Method::GET,
        "/internal/revocations",
    ))
    .await;
    assert_eq!(list.status(), 401);
    let list = send(
        stack
            .get("/internal/revocations")
            .header("x-service-token", "wrong"),
    )
    .await;
    assert_eq!(list.status(), 401);
}

#[tokio::test]
async fn an_admin_lists_and_searches_users_a_page_at_a_time() {
    let stack = Stack::start_with_admin().await;
    for name in ["ada", "adam", "bob", "zed_ad"] {
        stack.user(name).await;
    }
    let admin = stack.admin_token().await;
    let page = |query: &str| {
        fetch_json(as_bearer(
            &stack,
            &admin,
            Method::GET,
            &format!("/api/v1/admin/users{query}"),
        ))
    };
    let all = page("").await;
    let names: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, [ADMIN_NAME, "ada", "adam", "bob", "zed_ad"]);
    assert!(all["next_cursor"].is_null());
    assert!(all["items"][1].get("password_hash").is_none());
    assert_eq!(all["items"][1]["disabled"], false);

    let found = page("?q=AD").await;
    let names: Vec<&str> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ada", "adam", "zed_ad"]);
    // `_` and `%` match themselves only.
    assert_eq!(page("?q=_").await["items"].as_array().unwrap().len(), 1);
    assert_eq!(page("?q=%25").await["items"].as_array().unwrap().len(), 0);

    let first = page("?limit=2").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = page(&format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(second["items"][0]["username"], "adam");
    let third = page(&format!(
        "?limit=2&cursor={}",
        second["next_cursor"].as_str().unwrap()
    ))
    .await;
    assert_eq!(third["items"].as_array().unwrap().len(), 1);
    assert!(third["next_cursor"].is_null());

    for query in [
        "?limit=0",
        "?limit=201",
        "?limit=x",
        "?cursor=conv-1",
        "?cursor=usr-%27%20OR%201%3D1",
        "?unknown=1",
        &format!("?q={}", "a".repeat(65)),
    ] {
        let refused = send(as_bearer(
            &stack,
            &admin,
            Method::GET,
            &format!("/api/v1/admin/users{query}"),
        ))
        .await;
        assert_eq!(refused.status(), 400, "{query}");
    }
    let missing = send(as_bearer(
        &stack,
        &admin,
        Method::GET,
        "/api/v1/admin/users/usr-nobody",
    ))
    .await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_disabled_user_is_refused_by_every_service_within_five_seconds() {
    let stack = Stack::start_with_admin().await;
    let ada = stack.user("ada").await;
    let admin = stack.admin_token().await;
    let key = fetch_json(
        as_bearer(&stack, &ada.token, Method::POST, "/api/v1/api-keys")
            .json(&json!({"name": "script", "scopes": ["chat", "llm"]})),
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    // Her token works at the gateway and directly at both services.
    assert_eq!(
        direct_status(&stack, &stack.chat, "/chat/conversations", &ada.token).await,
        200
    );
    assert_eq!(
        direct_status(&stack, &stack.llm, "/llm-calls", &ada.token).await,
        200
    );
    assert_eq!(stack.me(&key).await.status(), 200);

    let disabled = patch_user(&stack, &admin, &ada.id, json!({"disabled": true})).await;
    assert_eq!(disabled.status(), 200);
    let disabled: Value = disabled.json().await.unwrap();
    assert_eq!(disabled["disabled"], true);

    // At once at the gateway: her token, her key, her login, her refresh.
    assert_eq!(stack.me(&ada.token).await.status(), 401);
    assert_eq!(stack.me(&key).await.status(), 401);
    let conversations = send(as_bearer(
        &stack,
        &ada.token,
        Method::GET,
        "/api/v1/conversations",
    ))
    .await;
    assert_eq!(conversations.status(), 401);
    let login = stack.login("ada", USER_PASSWORD).await;
    assert_eq!(login.status(), 403);
    assert_eq!(error_code(login).await, "account_disabled");
    let wrong = stack.login("ada", "not her password").await;
    assert_eq!(
        error_code(wrong).await,
        "unauthorized",
        "a stranger learns nothing"
    );
    assert_eq!(stack.refresh(&ada.refresh_token).await.status(), 401);

    // Within 5 s directly at chat-service and llm-proxy-service.
    let chat = refused_after(&stack, &stack.chat, "/chat/conversations", &ada.token).await;
    let llm = refused_after(&stack, &stack.llm, "/llm-calls", &ada.token).await;
    assert!(chat < Duration::from_secs(5), "chat-service took {chat:?}");
    assert!(
        llm < Duration::from_secs(5),
        "llm-proxy-service took {llm:?}"
    );

    // Enabled again: she signs in afresh; the old token stays refused.
    let enabled = patch_user(&stack, &admin, &ada.id, json!({"disabled": false})).await;
    assert_eq!(enabled.status(), 200);
    let login = stack.login("ada", USER_PASSWORD).await;
    assert_eq!(login.status(), 200);
    let fresh: Value = login.json().await.unwrap();
    let fresh = fresh["access_token"].as_str().unwrap();
    assert_eq!(stack.me(fresh).await.status(), 200);
    assert_eq!(stack.me(&ada.token).await.status(), 401);
    assert_eq!(stack.me(&key).await.status(), 200, "her keys work again");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        direct_status(&stack, &stack.chat, "/chat/conversations", fresh).await,
        200
    );
    assert_eq!(
        direct_status(&stack, &stack.chat, "/chat/conversations", &ada.token).await,
        401
    );
}

#[tokio::test]
async fn a_role_change_refuses_the_old_token_and_the_next_refresh_carries_it() {
    let stack = Stack::start_with_admin().await;
    let ada = stack.user("ada").await;
    let admin = stack.admin_token().await;
    let promoted = patch_user(&stack, &admin, &ada.id, json!({"role": "admin"})).await;
    assert_eq!(promoted.status(), 200);
    assert_eq!(stack.me(&ada.token).await.status(), 401);
    let refreshed: Value = stack
        .refresh(&ada.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    let token = refreshed["access_token"].as_str().unwrap();
    let me: Value = stack.me(token).await.json().await.unwrap();
    assert_eq!(me["role"], "admin");
    let users = send(as_bearer(&stack, token, Method::GET, "/api/v1/admin/users")).await;
    assert_eq!(users.status(), 200);
}

#[tokio::test]
async fn an_admin_cannot_disable_demote_delete_or_reset_herself() {
    let stack = Stack::start_with_admin().await;
    let admin = stack.admin_token().await;
    let me: Value = stack.me(&admin).await.json().await.unwrap();
    let id = me["id"].as_str().unwrap();
    for body in [json!({"disabled": true}), json!({"role": "user"})] {
        let refused = patch_user(&stack, &admin, id, body.clone()).await;
        assert_eq!(refused.status(), 409, "{body}");
        assert_eq!(error_code(refused).await, "own_account");
    }
    let refused = send(as_bearer(
        &stack,
        &admin,
        Method::DELETE,
        &format!("/api/v1/admin/users/{id}"),
    ))
    .await;
    assert_eq!(refused.status(), 409);
    let reset = send(
        as_bearer(
            &stack,
            &admin,
            Method::POST,
            &format!("/api/v1/admin/users/{id}/password"),
        )
        .json(&json!({"password": "a brand new password"})),
    )
    .await;
    assert_eq!(reset.status(), 409);
    assert_eq!(error_code(reset).await, "own_account");
    assert_eq!(stack.me(&admin).await.status(), 200);
}

#[tokio::test]
async fn bad_changes_are_refused_and_change_nothing() {
    let stack = Stack::start_with_admin().await;
    let ada = stack.user("ada").await;
    let admin = stack.admin_token().await;
    let path = format!("/api/v1/admin/users/{}", ada.id);
    for (body, status, code) in [
        ("{}", 422, "invalid_body"),
        ("{\"disabled\": \"yes\"}", 422, "invalid_body"),
        ("{\"role\": \"root\"}", 422, "invalid_body"),
        ("{\"disabled\": true, \"sudo\": 1}", 422, "invalid_body"),
        ("[true]", 422, "invalid_body"),
        ("{\"disabled\": tru", 400, "malformed_json"),
        ("", 400, "malformed_json"),
    ] {
        let refused = send(
            as_bearer(&stack, &admin, Method::PATCH, &path)
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(refused.status(), status, "{body}");
        assert_eq!(error_code(refused).await, code, "{body}");
    }
    let huge = format!("{{\"disabled\": true, \"x\": \"{}\"}}", "a".repeat(2 << 20));
    let refused = send(
        as_bearer(&stack, &admin, Method::PATCH, &path)
            .header("content-type", "application/json")
            .body(huge),
    )
    .await;
    assert_eq!(refused.status(), 413);
    let missing = patch_user(&stack, &admin, "usr-nobody", json!({"disabled": true})).await;
    assert_eq!(missing.status(), 404);
    let weak = send(
        as_bearer(&stack, &admin, Method::POST, &format!("{path}/password"))
            .json(&json!({"password": "short"})),
    )
    .await;
    assert_eq!(weak.status(), 422);
    // Ada is untouched.
    assert_eq!(stack.me(&ada.token).await.status(), 200);
    assert_eq!(stack.login("ada", USER_PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn an_admin_resets_a_password_and_every_session_of_the_user_ends() {
    let stack = Stack::start_with_admin().await;
    let ada = stack.user("ada").await;
    let admin = stack.admin_token().await;
    let reset = send(
        as_bearer(
            &stack,
            &admin,
            Method::POST,
            &format!("/api/v1/admin/users/{}/password", ada.id),
        )
        .json(&json!({"password": "a brand new password"})),
    )
    .await;
    assert_eq!(reset.status(), 204);
    assert_eq!(stack.login("ada", USER_PASSWORD).await.status(), 401);
    assert_eq!(
        stack.login("ada", "a brand new password").await.status(),
        200
    );
    assert_eq!(stack.refresh(&ada.refresh_token).await.status(), 401);
    assert_eq!(stack.me(&ada.token).await.status(), 401);
}

/// A second login of `user`: another session.
async fn second_login(stack: &Stack, name: &str, password: &str) -> User {
    let tokens: Value = stack.login(name, password).await.json().await.unwrap();
    let me: Value = stack
        .me(tokens["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    User {
        id: me["id"].as_str().unwrap().to_owned(),
        token: tokens["access_token"].as_str().unwrap().to_owned(),
        refresh_token: tokens["refresh_token"].as_str().unwrap().to_owned(),
    }
}

#[tokio::test]
async fn a_user_changes_her_password_and_her_other_sessions_end() {
    let stack = Stack::start().await;
    let ada = stack.user("ada").await;
    let laptop = second_login(&stack, "ada", USER_PASSWORD).await;
    let change = |token: &str, body: Value| {
        send(as_bearer(&stack, token, Method::POST, "/api/v1/auth/password").json(&body))
    };
    let wrong = change(
        &ada.token,
        json!({"current_password": "not it", "new_password": "a brand new password"}),
    )
    .await;
    assert_eq!(wrong.status(), 403);
    assert_eq!(error_code(wrong).await, "wrong_password");
    for body in [
        json!({"current_password": USER_PASSWORD, "new_password": "short"}),
        json!({"current_password": USER_PASSWORD}),
        json!({"current_password": USER_PASSWORD, "new_password": "a brand new password", "x": 1}),
    ] {
        assert_eq!(
            change(&ada.token, body.clone()).await.status(),
            422,
            "{body}"
        );
    }
    assert_eq!(
        stack.login("ada", USER_PASSWORD).await.status(),
        200,
        "nothing changed"
    );

    let changed = change(
        &ada.token,
        json!({"current_password": USER_PASSWORD, "new_password": "a brand new password"}),
    )
    .await;
    assert_eq!(changed.status(), 200);
    let tokens: Value = changed.json().await.unwrap();
    let token = tokens["access_token"].as_str().unwrap();
    assert_eq!(stack.me(token).await.status(), 200, "this session goes on");
    assert_eq!(
        stack
            .refresh(tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    // Every other session ended, access tokens included.
    assert_eq!(stack.refresh(&laptop.refresh_token).await.status(), 401);
    assert_eq!(stack.refresh(&ada.refresh_token).await.status(), 401);
    assert_eq!(stack.me(&laptop.token).await.status(), 401);
    assert_eq!(stack.login("ada", USER_PASSWORD).await.status(), 401);
    // An API key cannot change a password.
    let key = fetch_json(
        as_bearer(&stack, token, Method::POST, "/api/v1/api-keys")
            .json(&json!({"name": "k", "scopes": ["chat"]})),
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_key = change(
        &key,
        json!({"current_password": "a brand new password", "new_password": "another new password"}),
    )
    .await;
    assert_eq!(by_key.status(), 403);
}

#[tokio::test]
async fn a_user_sees_and_ends_her_own_sessions_and_no_one_elses() {
    let stack = Stack::start().await;
    let ada = stack.user("ada").await;
    let laptop = second_login(&stack, "ada", USER_PASSWORD).await;
    let bob = stack.user("bob").await;
    let sessions = fetch_json(as_bearer(
        &stack,
        &ada.token,
        Method::GET,
        "/api/v1/auth/sessions",
    ))
    .await;
    let ids: Vec<String> = sessions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{sessions}");
    let bobs = fetch_json(as_bearer(
        &stack,
        &bob.token,
        Method::GET,
        "/api/v1/auth/sessions",
    ))
    .await;
    let bobs_id = bobs["items"][0]["id"].as_str().unwrap().to_owned();
    let others = send(as_bearer(
        &stack,
        &ada.token,
        Method::DELETE,
        &format!("/api/v1/auth/sessions/{bobs_id}"),
    ))
    .await;
    assert_eq!(others.status(), 404);
    assert_eq!(stack.refresh(&bob.refresh_token).await.status(), 200);

    // The newest is the laptop's login: end it.
    let ended = send(as_bearer(
        &stack,
        &ada.token,
        Method::DELETE,
        &format!("/api/v1/auth/sessions/{}", ids[0]),
    ))
    .await;
    assert_eq!(ended.status(), 204);
    assert_eq!(stack.refresh(&laptop.refresh_token).await.status(), 401);
    assert_eq!(stack.refresh(&ada.refresh_token).await.status(), 200);
    let again = send(as_bearer(
        &stack,
        &ada.token,
        Method::DELETE,
        &format!("/api/v1/auth/sessions/{}", ids[0]),
    ))
    .await;
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn deleting_a_user_removes_her_conversations_calls_keys_and_tokens() {
    let stack = Stack::start_with_admin().await;
    let ada = stack.user("ada").await;
    let bob = stack.user("bob").await;
    let admin = stack.admin_token().await;
    for user in [&ada, &bob] {
        let conversation = stack.conversation(user).await;
        let events = stack.turn(user, &conversation, "what is 2+3?").await;
        assert_eq!(events.last().unwrap().1["type"], "done");
    }
    // Each turn's two calls (the tool call, then the answer) are recorded
    // before anything is deleted.
    assert_eq!(llm_calls_of(&stack.llm_db, &ada.id, 2).await.len(), 2);
    let bobs_calls = llm_calls_of(&stack.llm_db, &bob.id, 2).await.len();
    assert_eq!(bobs_calls, 2);
    let key = fetch_json(
        as_bearer(&stack, &ada.token, Method::POST, "/api/v1/api-keys")
            .json(&json!({"name": "k", "scopes": ["chat"]})),
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_owned();

    let deleted = send(as_bearer(
        &stack,
        &admin,
        Method::DELETE,
        &format!("/api/v1/admin/users/{}", ada.id),
    ))
    .await;
    assert_eq!(deleted.status(), 204);
    let gone = send(as_bearer(
        &stack,
        &admin,
        Method::GET,
        &format!("/api/v1/admin/users/{}", ada.id),
    ))
    .await;
    assert_eq!(gone.status(), 404);
    assert_eq!(stack.me(&key).await.status(), 401);
    assert_eq!(stack.me(&ada.token).await.status(), 401);
    assert!(llm_calls_of(&stack.llm_db, &ada.id, 0).await.is_empty());
    // chat-service, asked as the gateway asks for her: nothing left.
    let conversations: Value = stack
        .http
        .get(format!("{}/chat/conversations", stack.chat))
        .header("x-service-token", &stack.service_token)
        .header("x-user-id", &ada.id)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(conversations["items"], json!([]));
    // Bob keeps everything.
    assert_eq!(
        llm_calls_of(&stack.llm_db, &bob.id, 1).await.len(),
        bobs_calls
    );
    let his = fetch_json(as_bearer(
        &stack,
        &bob.token,
        Method::GET,
        "/api/v1/conversations",
    ))
    .await;
    assert_eq!(his["items"].as_array().unwrap().len(), 1);
    // Deleting again: she is not found.
    let again = send(as_bearer(
        &stack,
        &admin,
        Method::DELETE,
        &format!("/api/v1/admin/users/{}", ada.id),
    ))
    .await;
    assert_eq!(again.status(), 404);
}
