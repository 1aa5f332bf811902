//! Users and tokens end to end: registration rules, login in both shapes,
//! refresh rotation with reuse detection and its grace, logout, the bootstrapped admin,
//! key rotation seen by the other services, and the per-IP limits.

use serde_json::{Value, json};

use crate::common::{Stack, assert_error, error_code, fetch_json, kid_of, send, with_admin};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn registration_checks_its_input_and_refuses_a_taken_name() {
    let stack = Stack::start().await;
    let created = stack.register("Ada_L", PASSWORD).await;
    assert_eq!(created.status(), 201);
    let user: Value = created.json().await.unwrap();
    assert_eq!(user["username"], "ada_l");
    assert_eq!(user["role"], "user");
    assert!(user["id"].as_str().unwrap().starts_with("usr-"));

    // Case-insensitive: "ADA_L" is the same name.
    let taken = stack.register("ADA_L", PASSWORD).await;
    assert_eq!(taken.status(), 409);
    assert_eq!(error_code(taken).await, "username_taken");

    for (body, status, code) in [
        (
            json!({"username": "", "password": PASSWORD}),
            422,
            "invalid_username",
        ),
        (
            json!({"username": "bob", "password": "short"}),
            422,
            "weak_password",
        ),
        (
            json!({"username": "b b", "password": PASSWORD}),
            422,
            "invalid_username",
        ),
        (
            json!({"username": "x".repeat(33), "password": PASSWORD}),
            422,
            "invalid_username",
        ),
        (json!({"username": "bob"}), 422, "invalid_body"),
        (
            json!({"username": "bob", "password": "p".repeat(1025)}),
            422,
            "invalid_password",
        ),
    ] {
        let response = stack.auth_post("register", body.clone()).await;
        assert_eq!(response.status(), status, "{body}");
        assert_eq!(error_code(response).await, code, "{body}");
    }
    let register_raw = |body: String| {
        let request = stack.post("/api/v1/auth/register");
        send(
            request
                .header("content-type", "application/json")
                .body(body),
        )
    };
    let malformed = register_raw("{not json".into()).await;
    assert_eq!(malformed.status(), 400);
    let oversized = register_raw(format!(
        r#"{{"username":"bob","password":"{}"}}"#,
        "p".repeat(2 << 20)
    ))
    .await;
    assert_eq!(oversized.status(), 413);
    assert_eq!(error_code(oversized).await, "body_too_large");
    // Nothing of the refused attempts was stored: "bob" is still free.
    assert_eq!(stack.register("bob", PASSWORD).await.status(), 201);
}

#[tokio::test]
async fn login_takes_json_or_an_oauth2_password_form() {
    let stack = Stack::start().await;
    assert_eq!(stack.register("ada", PASSWORD).await.status(), 201);
    let json_login = stack.login("ADA", PASSWORD).await;
    assert_eq!(json_login.status(), 200);
    assert_eq!(json_login.headers()["cache-control"], "no-store");
    let tokens: Value = json_login.json().await.unwrap();
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 1800);
    let me: Value = stack
        .me(tokens["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "ada");

    let form_login = |grant_type: &'static str| {
        let form = [
            ("grant_type", grant_type),
            ("username", "ada"),
            ("password", PASSWORD),
        ];
        send(stack.post("/api/v1/auth/login").form(&form))
    };
    let form = form_login("password").await;
    assert_eq!(form.status(), 200);
    let wrong_grant = form_login("client_credentials").await;
    assert_eq!(wrong_grant.status(), 400);
    assert_eq!(error_code(wrong_grant).await, "unsupported_grant_type");

    for (username, password) in [("ada", "wrong password"), ("nobody", PASSWORD)] {
        let refused = stack.login(username, password).await;
        assert_error(refused, 401, "unauthorized", username).await;
    }
}

#[tokio::test]
async fn a_refresh_token_is_rotated_and_its_reuse_revokes_the_whole_login() {
    let stack = Stack::start().await;
    let user = stack.user("ada").await;

    let first = stack.refresh(&user.refresh_token).await;
    assert_eq!(first.status(), 200);
    let rotated: Value = first.json().await.unwrap();
    let second_token = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_token, user.refresh_token);
    let access = rotated["access_token"].as_str().unwrap();
    assert_eq!(stack.me(access).await.status(), 200);

    // The form shape works too, and rotates again.
    let third = stack
        .http
        .post(format!("{}/api/v1/auth/refresh", stack.gateway))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", second_token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), 200);
    let third_token = third.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // A thief replays the first token: refused, and the login is revoked…
    let replay = stack.refresh(&user.refresh_token).await;
    assert_eq!(replay.status(), 401);
    assert_eq!(error_code(replay).await, "refresh_token_reused");
    // …so the newest token, the rightful user's, no longer works either.
    let revoked = stack.refresh(&third_token).await;
    assert_eq!(revoked.status(), 401);
    assert_eq!(error_code(revoked).await, "refresh_token_revoked");

    // Another login of the same user is a different family, untouched.
    let other: Value = stack.login("ada", PASSWORD).await.json().await.unwrap();
    let other_token = other["refresh_token"].as_str().unwrap();
    assert_eq!(stack.refresh(other_token).await.status(), 200);
}

/// The new refresh token in a 200 answer.
async fn next_token(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_token_presented_again_within_the_grace_gets_a_new_one_until_a_later_one_is_used() {
    let stack = Stack::start().await;
    let user = stack.user("ada").await;

    // The answer to the first refresh never arrives (a reload)…
    let lost = next_token(stack.refresh(&user.refresh_token).await).await;
    // …so the client presents the same token again: a new one, no revocation.
    let again = next_token(stack.refresh(&user.refresh_token).await).await;
    assert_ne!(again, lost);
    assert_ne!(again, user.refresh_token);
    let newest = next_token(stack.refresh(&again).await).await;

    // Once a later token of the login was used, the first one is a replay.
    let replay = stack.refresh(&user.refresh_token).await;
    assert_eq!(replay.status(), 401);
    assert_eq!(error_code(replay).await, "refresh_token_reused");
    let revoked = stack.refresh(&newest).await;
    assert_eq!(error_code(revoked).await, "refresh_token_revoked");
    let lost = stack.refresh(&lost).await;
    assert_eq!(error_code(lost).await, "refresh_token_revoked");
}

#[tokio::test]
async fn concurrent_uses_of_one_refresh_token_both_get_a_token_of_the_same_login() {
    let stack = Stack::start().await;
    let user = stack.user("ada").await;
    let (a, b) = tokio::join!(
        stack.refresh(&user.refresh_token),
        stack.refresh(&user.refresh_token)
    );
    let (a, b) = (next_token(a).await, next_token(b).await);
    assert_ne!(a, b);
    let a_next = next_token(stack.refresh(&a).await).await;
    // The sibling is still good: it was never used.
    let b_next = next_token(stack.refresh(&b).await).await;
    // The original again, now that its successors were used: reuse.
    let replay = stack.refresh(&user.refresh_token).await;
    assert_eq!(error_code(replay).await, "refresh_token_reused");
    for token in [a_next, b_next] {
        let revoked = stack.refresh(&token).await;
        assert_eq!(error_code(revoked).await, "refresh_token_revoked");
    }
}

#[tokio::test]
async fn with_no_grace_a_token_presented_twice_revokes_its_login_at_once() {
    let stack = Stack::start_with(|settings| settings.auth.refresh_reuse_grace_secs = 0).await;
    let user = stack.user("ada").await;
    let next = next_token(stack.refresh(&user.refresh_token).await).await;
    let replay = stack.refresh(&user.refresh_token).await;
    assert_eq!(error_code(replay).await, "refresh_token_reused");
    let revoked = stack.refresh(&next).await;
    assert_eq!(error_code(revoked).await, "refresh_token_revoked");

    // Two at once: one wins, the other is reuse, and the winner's token
    // died with the family.
    let user = stack.user("bob").await;
    let (a, b) = tokio::join!(
        stack.refresh(&user.refresh_token),
        stack.refresh(&user.refresh_token)
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401]);
    let winner = next_token(if a.status() == 200 { a } else { b }).await;
    assert_eq!(stack.refresh(&winner).await.status(), 401);
}

#[tokio::test]
async fn past_the_grace_a_token_presented_again_revokes_its_login() {
    let stack = Stack::start_with(|settings| settings.auth.refresh_reuse_grace_secs = 1).await;
    let user = stack.user("ada").await;
    let next = next_token(stack.refresh(&user.refresh_token).await).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let replay = stack.refresh(&user.refresh_token).await;
    assert_eq!(error_code(replay).await, "refresh_token_reused");
    let revoked = stack.refresh(&next).await;
    assert_eq!(error_code(revoked).await, "refresh_token_revoked");
}

#[tokio::test]
async fn refresh_refuses_unknown_and_malformed_tokens() {
    let stack = Stack::start().await;
    let unknown = stack.refresh("not-a-token").await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(error_code(unknown).await, "invalid_refresh_token");
    let missing = stack.auth_post("refresh", json!({})).await;
    assert_eq!(missing.status(), 422);
    let wrong_type = stack
        .auth_post("refresh", json!({"refresh_token": 7}))
        .await;
    assert_eq!(wrong_type.status(), 422);
}

#[tokio::test]
async fn logout_revokes_that_login_and_everywhere_revokes_all() {
    let stack = Stack::start().await;
    let user = stack.user("ada").await;
    let second: Value = stack.login("ada", PASSWORD).await.json().await.unwrap();
    let second_refresh = second["refresh_token"].as_str().unwrap().to_owned();

    let out = stack
        .auth_post("logout", json!({"refresh_token": user.refresh_token}))
        .await;
    assert_eq!(out.status(), 204);
    assert_eq!(stack.refresh(&user.refresh_token).await.status(), 401);
    // The other login still works.
    let rotated: Value = stack.refresh(&second_refresh).await.json().await.unwrap();
    let live_refresh = rotated["refresh_token"].as_str().unwrap().to_owned();

    // An unknown token is answered the same way: nothing to learn.
    let unknown = stack
        .auth_post("logout", json!({"refresh_token": "no-such-token"}))
        .await;
    assert_eq!(unknown.status(), 204);
    let empty = stack.auth_post("logout", json!({})).await;
    assert_eq!(empty.status(), 422);

    // Everywhere needs the access token.
    let anonymous = stack.auth_post("logout", json!({"everywhere": true})).await;
    assert_eq!(anonymous.status(), 401);
    let everywhere = stack
        .http
        .post(format!("{}/api/v1/auth/logout", stack.gateway))
        .bearer_auth(&user.token)
        .json(&json!({"everywhere": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(everywhere.status(), 204);
    assert_eq!(stack.refresh(&live_refresh).await.status(), 401);
}

#[tokio::test]
async fn the_eleventh_login_attempt_from_one_ip_in_a_minute_gets_429() {
    let stack = Stack::start().await;
    stack.register("ada", PASSWORD).await;
    for attempt in 1..=10 {
        let password = if attempt % 2 == 0 {
            PASSWORD
        } else {
            "wrong password"
        };
        let status = stack.login("ada", password).await.status();
        assert_ne!(status, 429, "attempt {attempt}");
    }
    let limited = stack.login("ada", PASSWORD).await;
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(error_code(limited).await, "rate_limited");
}

#[tokio::test]
async fn login_limits_count_an_ipv6_client_by_its_64() {
    // Behind a reverse proxy the gateway is told to trust, the client's
    // address comes in X-Forwarded-For: the way to test other addresses
    // than 127.0.0.1.
    let stack = Stack::start_with(|settings| {
        settings.rate_limits.login_per_minute = 2;
        settings.rate_limits.trust_forwarded_for = true;
    })
    .await;
    let login_from = |ip: &'static str| {
        stack
            .post("/api/v1/auth/login")
            .header("x-forwarded-for", ip)
            .json(&json!({"username": "nobody", "password": "wrong password"}))
            .send()
    };
    // Three addresses of one /64 share its two attempts.
    for ip in ["2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe"] {
        assert_eq!(login_from(ip).await.unwrap().status(), 401, "{ip}");
    }
    let limited = login_from("2001:db8:1:2:a:b:c:d").await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(error_code(limited).await, "rate_limited");
    // The next /64 is another client.
    assert_eq!(login_from("2001:db8:1:3::1").await.unwrap().status(), 401);
    // IPv4 counts per address, and an IPv4-mapped IPv6 address as IPv4.
    for ip in ["10.0.0.1", "::ffff:10.0.0.1"] {
        assert_eq!(login_from(ip).await.unwrap().status(), 401, "{ip}");
    }
    assert_eq!(login_from("10.0.0.1").await.unwrap().status(), 429);
    assert_eq!(login_from("10.0.0.2").await.unwrap().status(), 401);
}

#[tokio::test]
async fn registrations_are_limited_per_ip_too() {
    let stack = Stack::start_with(|settings| settings.rate_limits.register_per_minute = 3).await;
    for n in 0..3 {
        assert_eq!(
            stack.register(&format!("user{n}"), PASSWORD).await.status(),
            201
        );
    }
    let limited = stack.register("user3", PASSWORD).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn chat_posts_are_limited_per_user() {
    let stack = Stack::start_with(|settings| settings.rate_limits.chat_posts_per_minute = 2).await;
    let ada = stack.user("ada").await;
    let bob = stack.user("bob").await;
    for _ in 0..2 {
        assert_eq!(
            stack.create_conversation(&ada, json!({})).await.status(),
            201
        );
    }
    let limited = stack.create_conversation(&ada, json!({})).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    // Reading is not limited, and another user has their own allowance.
    let reading = stack.get("/api/v1/conversations").bearer_auth(&ada.token);
    assert_eq!(send(reading).await.status(), 200);
    assert_eq!(
        stack.create_conversation(&bob, json!({})).await.status(),
        201
    );
}

#[tokio::test]
async fn the_configured_admin_is_bootstrapped_and_may_rotate_the_signing_key() {
    let stack = Stack::start_with_admin().await;
    let admin_token = stack.admin_token().await;
    let me: Value = stack.me(&admin_token).await.json().await.unwrap();
    assert_eq!(me["role"], "admin");

    let user = stack.user("ada").await;
    let keys = "/api/v1/admin/signing-keys";
    let forbidden = send(stack.post(keys).bearer_auth(&user.token)).await;
    assert_eq!(forbidden.status(), 403);
    let anonymous = send(stack.post(keys)).await;
    assert_eq!(anonymous.status(), 401);

    // The services learn the current key while it is the only one.
    let conversations = format!("{}/chat/conversations", stack.chat);
    let traces = format!("{}/llm-calls", stack.llm);
    for url in [&conversations, &traces] {
        let before = send(stack.http.get(url).bearer_auth(&user.token)).await;
        assert_eq!(before.status(), 200, "{url}");
    }

    let rotated = send(stack.post(keys).bearer_auth(&admin_token)).await;
    assert_eq!(rotated.status(), 201);
    let new_kid = rotated.json::<Value>().await.unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwks = fetch_json(stack.get("/.well-known/jwks.json")).await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2, "{jwks}");
    assert_eq!(kids[0], new_kid);
    let listed = fetch_json(stack.get(keys).bearer_auth(&admin_token)).await;
    assert_eq!(listed["items"][0]["active"], true);
    assert_eq!(listed["items"][1]["active"], false);
    assert!(listed["items"][1]["retired_at"].is_string());

    // A token signed with the new key: chat-service and llm-proxy-service
    // have never seen its kid and fetch the JWKS again to accept it; the
    // token signed before the rotation still works everywhere.
    let fresh: Value = stack.login("ada", PASSWORD).await.json().await.unwrap();
    let fresh_token = fresh["access_token"].as_str().unwrap();
    assert_eq!(kid_of(fresh_token), new_kid);
    for url in [&conversations, &traces] {
        for token in [fresh_token, user.token.as_str()] {
            let response = send(stack.http.get(url).bearer_auth(token)).await;
            assert_eq!(response.status(), 200, "{url}");
        }
    }
    assert_eq!(stack.me(&user.token).await.status(), 200);
}

#[tokio::test]
async fn a_misconfigured_admin_password_stops_the_start() {
    let database = confab_kit::testing::TestDatabase::new("gateway")
        .await
        .unwrap();
    let mut settings =
        <gateway::Settings as confab_kit::settings::ServiceSettings>::defaults().unwrap();
    settings.server.port = 0;
    settings.database = database.settings.clone();
    settings.admin.username = "root".into();
    settings.admin.password = "short".into();
    let err = gateway::build(settings).await.err().unwrap();
    assert!(
        format!("{err:#}").contains("CONFAB__ADMIN__PASSWORD"),
        "{err:#}"
    );
}

/// A gateway started on `database` with `configure`d settings, and its URL.
async fn gateway_on(
    database: &confab_kit::testing::TestDatabase,
    configure: impl FnOnce(&mut gateway::Settings),
) -> anyhow::Result<(String, actix_web::dev::ServerHandle)> {
    let mut settings =
        <gateway::Settings as confab_kit::settings::ServiceSettings>::defaults().unwrap();
    settings.server.port = 0;
    settings.database = database.settings.clone();
    configure(&mut settings);
    let running = gateway::build(settings).await?;
    let url = format!("http://127.0.0.1:{}", running.port());
    let handle = running.handle();
    tokio::spawn(running.run_until_stopped());
    Ok((url, handle))
}

/// A database on which someone registered `root` (password "squatter
/// password") before an operator configured `root` as the admin.
async fn root_registered_first() -> confab_kit::testing::TestDatabase {
    let database = confab_kit::testing::TestDatabase::new("gateway")
        .await
        .unwrap();
    let (url, handle) = gateway_on(&database, |_| {}).await.unwrap();
    let registered = reqwest::Client::new()
        .post(format!("{url}/api/v1/auth/register"))
        .json(&json!({"username": "root", "password": "squatter password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    handle.stop(true).await;
    database
}

/// root's role, as `me` reports it after logging in with root's own password.
async fn role_of_root(gateway: &str) -> Value {
    let http = reqwest::Client::new();
    let tokens: Value = http
        .post(format!("{gateway}/api/v1/auth/login"))
        .json(&json!({"username": "root", "password": "squatter password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let me: Value = http
        .get(format!("{gateway}/api/v1/auth/me"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    me["role"].clone()
}

#[tokio::test]
async fn an_existing_user_with_the_admin_name_stops_the_start_and_stays_a_user() {
    let database = root_registered_first().await;
    let err = gateway_on(&database, with_admin).await.err().unwrap();
    let message = format!("{err:#}");
    assert!(message.contains("promote_existing"), "{message}");
    assert!(message.contains("'root'"), "{message}");
    // Not promoted: started without the admin setting, the gateway still
    // knows root as a plain user.
    let (url, _handle) = gateway_on(&database, |_| {}).await.unwrap();
    assert_eq!(role_of_root(&url).await, "user");
}

#[tokio::test]
async fn an_existing_user_is_promoted_when_the_operator_allows_it() {
    let database = root_registered_first().await;
    let (url, _handle) = gateway_on(&database, |settings| {
        with_admin(settings);
        settings.admin.promote_existing = true;
    })
    .await
    .unwrap();
    assert_eq!(role_of_root(&url).await, "admin");
}
