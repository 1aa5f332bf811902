//! Browser sign-in (DESIGN §5 "Browsers"): the console's login sets the
//! tokens as `HttpOnly; SameSite=Strict` cookies, refresh and logout take
//! the refresh cookie, the access cookie signs in every endpoint a bearer
//! token does (REST, proxied routes, WebSockets), cookie-authenticated
//! state changes need a trusted `Origin` (or the console marker without
//! one), and the cookies never reach an upstream. API clients see no
//! difference. Real gateway, real services, a real echo upstream.

use reqwest::RequestBuilder;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::common::echo::stack_with_echo;
use crate::common::ws::try_connect_with;
use crate::common::{ADMIN_NAME, ADMIN_PASSWORD, Stack, error_code};

const PASSWORD: &str = "correct horse battery";
const MARKER: (&str, &str) = ("x-confab-client", "console");
const EVIL: &str = "https://evil.example";
const LOGOUT: &str = "/api/v1/auth/logout";

/// The cookies a browser keeps after the console signed in.
struct Session {
    access: String,
    refresh: String,
}

impl Session {
    fn access_cookie(&self) -> String {
        format!("confab_access={}", self.access)
    }

    fn refresh_cookie(&self) -> String {
        format!("confab_refresh={}", self.refresh)
    }
}

/// The `Set-Cookie` lines of a response.
fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The `Set-Cookie` line of `name`; there must be exactly one.
fn line_of<'a>(lines: &'a [String], name: &str) -> &'a str {
    let matching: Vec<&String> = lines
        .iter()
        .filter(|line| line.starts_with(&format!("{name}=")))
        .collect();
    assert_eq!(matching.len(), 1, "{name} in {lines:?}");
    matching[0]
}

/// A cookie's value and its attributes, as sorted lowercase strings.
fn parse_line(line: &str) -> (String, Vec<String>) {
    let mut parts = line.split(';').map(str::trim);
    let (_, value) = parts.next().unwrap().split_once('=').unwrap();
    let mut attributes: Vec<String> = parts
        .filter(|a| !a.to_lowercase().starts_with("expires="))
        .map(str::to_lowercase)
        .collect();
    attributes.sort();
    (value.to_owned(), attributes)
}

fn attributes(list: &[&str]) -> Vec<String> {
    let mut list: Vec<String> = list.iter().map(|a| a.to_lowercase()).collect();
    list.sort();
    list
}

/// Both cookies cleared, with the paths they were set on.
fn assert_cleared(lines: &[String]) {
    for (name, path) in [("confab_access", "/"), ("confab_refresh", "/api/v1/auth")] {
        let (value, attrs) = parse_line(line_of(lines, name));
        assert_eq!(value, "", "{lines:?}");
        assert_eq!(
            attrs,
            attributes(&[
                "HttpOnly",
                "SameSite=Strict",
                &format!("Path={path}"),
                "Max-Age=0"
            ]),
            "{lines:?}"
        );
    }
}

/// The attributes of a newly set refresh cookie: 30 days, sent only to
/// the auth endpoints.
fn new_refresh_attributes() -> Vec<String> {
    attributes(&[
        "HttpOnly",
        "SameSite=Strict",
        "Path=/api/v1/auth",
        "Max-Age=2592000",
    ])
}

/// The value of the cookie `name` that `lines` set.
fn cookie_value(lines: &[String], name: &str) -> String {
    parse_line(line_of(lines, name)).0
}

/// A refusal for want of a trusted origin that leaves the cookies alone.
async fn assert_csrf_rejected(response: reqwest::Response, context: &str) {
    assert_eq!(response.status(), 403, "{context}");
    assert!(set_cookies(&response).is_empty(), "{context}");
    assert_eq!(error_code(response).await, "csrf_rejected", "{context}");
}

/// A 401 with the error `code` that clears both cookies.
async fn assert_refused_and_cleared(response: reqwest::Response, code: &str, context: &str) {
    assert_eq!(response.status(), 401, "{context}");
    assert_cleared(&set_cookies(&response));
    assert_eq!(error_code(response).await, code, "{context}");
}

/// Sends `request` with the `headers` (a browser's `Cookie` and `Origin`,
/// the console marker) added.
async fn send(request: RequestBuilder, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = request;
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// A login with these credentials and `headers`.
async fn login(
    stack: &Stack,
    username: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let credentials = json!({"username": username, "password": password});
    let request = stack.post("/api/v1/auth/login").json(&credentials);
    send(request, headers).await
}

/// Logs `username` in as the console does (the marker and this origin).
async fn console_login(stack: &Stack, username: &str) -> Session {
    let origin = ("origin", stack.gateway.as_str());
    let response = login(stack, username, PASSWORD, &[MARKER, origin]).await;
    assert_eq!(response.status(), 200);
    let lines = set_cookies(&response);
    Session {
        access: cookie_value(&lines, "confab_access"),
        refresh: cookie_value(&lines, "confab_refresh"),
    }
}

async fn registered(stack: &Stack, username: &str) -> Session {
    assert_eq!(stack.register(username, PASSWORD).await.status(), 201);
    console_login(stack, username).await
}

/// The user's conversations, as the owner of `token` lists them.
async fn conversation_count(stack: &Stack, token: &str) -> usize {
    let list = stack.get("/api/v1/conversations").bearer_auth(token);
    let page: Value = send(list, &[]).await.json().await.unwrap();
    page["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn the_consoles_login_sets_both_cookies_and_answers_without_the_refresh_token() {
    let stack = Stack::start().await;
    stack.register("ada", PASSWORD).await;
    let origin = ("origin", stack.gateway.as_str());
    let response = login(&stack, "ada", PASSWORD, &[MARKER, origin]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let lines = set_cookies(&response);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let (refresh, refresh_attrs) = parse_line(line_of(&lines, "confab_refresh"));
    assert_eq!(refresh_attrs, new_refresh_attributes());
    let (access, access_attrs) = parse_line(line_of(&lines, "confab_access"));
    assert_eq!(
        access_attrs,
        attributes(&["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=1800"])
    );
    let body: Value = response.json().await.unwrap();
    let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["access_token", "expires_in", "token_type"], "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 1800);
    assert_eq!(body["access_token"], access.as_str());
    assert_eq!(refresh.len(), 43, "256 bits, base64url: {refresh}");
    assert!(!body.to_string().contains(&refresh));

    // The marker alone stands for the origin: no other site can send it.
    let no_origin = login(&stack, "ada", PASSWORD, &[MARKER]).await;
    assert_eq!(no_origin.status(), 200);
    assert_eq!(set_cookies(&no_origin).len(), 2);

    // Login CSRF: another site cannot sign the browser in.
    let cross_site = login(&stack, "ada", PASSWORD, &[MARKER, ("origin", EVIL)]).await;
    assert_csrf_rejected(cross_site, "login").await;

    // A wrong password sets nothing.
    let wrong = login(&stack, "ada", "not the password", &[MARKER]).await;
    assert_eq!(wrong.status(), 401);
    assert!(set_cookies(&wrong).is_empty());
}

#[tokio::test]
async fn api_clients_keep_the_json_form_and_get_no_cookies() {
    let stack = Stack::start().await;
    stack.register("ada", PASSWORD).await;
    let login = stack.login("ada", PASSWORD).await;
    assert_eq!(login.status(), 200);
    assert!(set_cookies(&login).is_empty());
    let tokens: Value = login.json().await.unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    let refreshed = stack.refresh(&refresh_token).await;
    assert_eq!(refreshed.status(), 200);
    assert!(set_cookies(&refreshed).is_empty());
    let tokens: Value = refreshed.json().await.unwrap();
    let next = tokens["refresh_token"].as_str().unwrap();

    // Without a cookie, no body names no token, as `{}` does: 422, not a
    // JSON syntax error; with or without a Content-Type.
    for endpoint in ["refresh", "logout"] {
        let path = format!("/api/v1/auth/{endpoint}");
        let empty = send(stack.post(&path), &[("content-type", "application/json")]).await;
        assert_eq!(empty.status(), 422, "{endpoint}");
        assert!(set_cookies(&empty).is_empty());
        assert_eq!(error_code(empty).await, "invalid_body");
        let bare = send(stack.post(&path), &[]).await;
        assert_eq!(bare.status(), 422, "{endpoint}");
        assert_eq!(error_code(bare).await, "invalid_body");
        let nothing = stack.auth_post(endpoint, json!({})).await;
        assert_eq!(nothing.status(), 422, "{endpoint}");
        assert_eq!(error_code(nothing).await, "invalid_body");
    }

    let logout = stack
        .auth_post("logout", json!({"refresh_token": next}))
        .await;
    assert_eq!(logout.status(), 204);
    assert!(set_cookies(&logout).is_empty());
    let after = stack.refresh(next).await;
    assert_eq!(after.status(), 401);
    assert!(set_cookies(&after).is_empty());
}

/// `GET /api/v1/auth/me` signed in by the access cookie `access` alone.
async fn me_by_cookie(stack: &Stack, access: &str) -> reqwest::Response {
    let cookie = format!("confab_access={access}");
    send(stack.get("/api/v1/auth/me"), &[("cookie", &cookie)]).await
}

/// A console refresh by the cookie `refresh`, from the console's origin.
async fn cookie_refresh(stack: &Stack, refresh: &str) -> reqwest::Response {
    let cookie = format!("confab_refresh={refresh}");
    let headers = [("cookie", cookie.as_str()), ("origin", &stack.gateway)];
    send(stack.post("/api/v1/auth/refresh"), &headers).await
}

/// A refresh by the cookie `refresh` with the console marker and no Origin.
async fn marked_refresh(stack: &Stack, refresh: &str) -> reqwest::Response {
    let cookie = format!("confab_refresh={refresh}");
    send(
        stack.post("/api/v1/auth/refresh"),
        &[("cookie", &cookie), MARKER],
    )
    .await
}

#[tokio::test]
async fn a_reload_that_lost_the_rotated_cookie_stays_signed_in() {
    let stack = Stack::start().await;
    let first = registered(&stack, "ada").await;
    // The page reloads while the refresh's Set-Cookie is in flight: the
    // browser keeps the old cookie and refreshes with it again.
    let lost = cookie_refresh(&stack, &first.refresh).await;
    assert_eq!(lost.status(), 200);
    let again = cookie_refresh(&stack, &first.refresh).await;
    assert_eq!(again.status(), 200);
    let lines = set_cookies(&again);
    let (refresh, _) = parse_line(line_of(&lines, "confab_refresh"));
    let (access, _) = parse_line(line_of(&lines, "confab_access"));
    assert_ne!(refresh, first.refresh);
    assert_eq!(me_by_cookie(&stack, &access).await.status(), 200);
    assert_eq!(cookie_refresh(&stack, &refresh).await.status(), 200);
}

#[tokio::test]
async fn a_refresh_by_cookie_rotates_and_the_old_cookie_is_then_refused_as_reused() {
    let stack = Stack::start().await;
    let first = registered(&stack, "ada").await;

    // Empty body and `{}` both do.
    let mut current = first.refresh.clone();
    let mut seen = vec![first.refresh.clone()];
    for body in ["", "{}"] {
        let cookie = format!("confab_refresh={current}");
        let headers = [
            ("cookie", cookie.as_str()),
            ("origin", &stack.gateway),
            ("content-type", "application/json"),
        ];
        let response = send(stack.post("/api/v1/auth/refresh").body(body), &headers).await;
        assert_eq!(response.status(), 200, "{body:?}");
        let lines = set_cookies(&response);
        let (refresh, attrs) = parse_line(line_of(&lines, "confab_refresh"));
        assert_eq!(attrs, new_refresh_attributes());
        let (access, _) = parse_line(line_of(&lines, "confab_access"));
        let answer: Value = response.json().await.unwrap();
        assert!(answer.get("refresh_token").is_none(), "{answer}");
        assert_eq!(answer["access_token"], access.as_str());
        assert!(!seen.contains(&refresh));
        seen.push(refresh.clone());
        current = refresh;
        // The new access cookie signs in.
        assert_eq!(me_by_cookie(&stack, &access).await.status(), 200);
    }

    // The first cookie again: reuse, the login is revoked, cookies cleared.
    let replay = marked_refresh(&stack, &first.refresh).await;
    assert_refused_and_cleared(replay, "refresh_token_reused", "replay").await;
    let revoked = marked_refresh(&stack, &current).await;
    assert_refused_and_cleared(revoked, "refresh_token_revoked", "current").await;
}

#[tokio::test]
async fn a_refresh_cookie_from_another_site_or_without_origin_or_marker_is_refused_and_unused() {
    let stack = Stack::start().await;
    let session = registered(&stack, "ada").await;
    let refresh_cookie = session.refresh_cookie();
    let cookie = ("cookie", refresh_cookie.as_str());
    for headers in [
        vec![cookie, ("origin", EVIL), MARKER],
        vec![cookie, ("origin", "null"), MARKER],
        vec![cookie],
    ] {
        let refused = send(stack.post("/api/v1/auth/refresh"), &headers).await;
        // Another site cannot sign the console out either.
        assert_csrf_rejected(refused, &format!("{headers:?}")).await;
    }
    // The token was not used up: the console still refreshes with it.
    let ok = marked_refresh(&stack, &session.refresh).await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn a_token_in_the_body_wins_over_the_cookie() {
    let stack = Stack::start().await;
    let user = stack.user("ada").await;
    let console = console_login(&stack, "ada").await;
    let body = json!({"refresh_token": user.refresh_token});
    let request = stack.post("/api/v1/auth/refresh").json(&body);
    let response = send(request, &[("cookie", &console.refresh_cookie())]).await;
    assert_eq!(response.status(), 200);
    assert!(set_cookies(&response).is_empty());
    let answer: Value = response.json().await.unwrap();
    assert!(answer["refresh_token"].is_string(), "{answer}");
    // The cookie's token was left alone.
    let cookie = marked_refresh(&stack, &console.refresh).await;
    assert_eq!(cookie.status(), 200);
}

#[tokio::test]
async fn logout_by_cookie_clears_both_cookies_and_the_refresh_cookie_stops_working() {
    let stack = Stack::start().await;
    let session = registered(&stack, "ada").await;
    let other = console_login(&stack, "ada").await;

    let both = format!("{}; {}", session.access_cookie(), session.refresh_cookie());
    let logout = send(stack.post(LOGOUT), &[("cookie", &both), MARKER]).await;
    assert_eq!(logout.status(), 204);
    assert_cleared(&set_cookies(&logout));

    let after = marked_refresh(&stack, &session.refresh).await;
    assert_refused_and_cleared(after, "refresh_token_revoked", "after logout").await;
    // Only that login: the other one still refreshes.
    let still = cookie_refresh(&stack, &other.refresh).await;
    assert_eq!(still.status(), 200);

    // Signing out with nothing left to revoke is still a sign-out.
    let again = send(stack.post(LOGOUT), &[MARKER]).await;
    assert_eq!(again.status(), 204);
    assert_cleared(&set_cookies(&again));

    // From another site: refused, nothing revoked, nothing cleared.
    let headers = [("cookie", &*other.refresh_cookie()), ("origin", EVIL)];
    let cross_site = send(stack.post(LOGOUT), &headers).await;
    assert_csrf_rejected(cross_site, "logout").await;
}

#[tokio::test]
async fn everywhere_by_the_access_cookie_signs_out_every_login() {
    let stack = Stack::start().await;
    let user = stack.user("ada").await;
    let session = console_login(&stack, "ada").await;

    let body = json!({"everywhere": true});
    let access_cookie = session.access_cookie();
    let cookie = ("cookie", access_cookie.as_str());
    let request = || stack.post(LOGOUT).json(&body);
    let cross_site = send(request(), &[cookie, ("origin", EVIL)]).await;
    assert_eq!(cross_site.status(), 403);
    let refreshed = stack.refresh(&user.refresh_token).await;
    assert_eq!(refreshed.status(), 200, "nothing was revoked");
    let refreshed: Value = refreshed.json().await.unwrap();
    let api_token = refreshed["refresh_token"].as_str().unwrap().to_owned();

    let everywhere = send(request(), &[cookie, ("origin", &stack.gateway)]).await;
    assert_eq!(everywhere.status(), 204);
    assert_cleared(&set_cookies(&everywhere));
    assert_eq!(stack.refresh(&api_token).await.status(), 401);
    let console = marked_refresh(&stack, &session.refresh).await;
    assert_eq!(console.status(), 401);

    // Without a valid access token the cookies stay, so the console can
    // refresh and try again.
    let forged = ("cookie", "confab_access=not.a.token");
    let unauthenticated = send(request(), &[forged, MARKER]).await;
    assert_eq!(unauthenticated.status(), 401);
    assert!(set_cookies(&unauthenticated).is_empty());
}

#[tokio::test]
async fn the_access_cookie_signs_in_me_and_proxied_reads_and_same_origin_writes() {
    let stack = Stack::start().await;
    let session = registered(&stack, "ada").await;
    let bob = stack.user("bob").await;

    let with_theme = format!("theme=dark; {}", session.access_cookie());
    let me = send(stack.get("/api/v1/auth/me"), &[("cookie", &with_theme)]).await;
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["username"], "ada");

    let access_cookie = session.access_cookie();
    let cookie = ("cookie", access_cookie.as_str());
    let title = json!({"title": "from the console"});
    let create = || stack.post("/api/v1/conversations").json(&title);
    let created = send(create(), &[cookie, ("origin", &stack.gateway)]).await;
    assert_eq!(created.status(), 201);
    let conversation: Value = created.json().await.unwrap();
    assert_eq!(send(create(), &[cookie, MARKER]).await.status(), 201);

    // CSRF: another site's page, or a request with neither Origin nor
    // marker, changes nothing upstream.
    for headers in [
        vec![("origin", EVIL)],
        vec![("origin", EVIL), MARKER],
        vec![],
    ] {
        let refused = send(create(), &[vec![cookie], headers.clone()].concat()).await;
        assert_eq!(refused.status(), 403, "{headers:?}");
        assert_eq!(error_code(refused).await, "csrf_rejected");
    }
    let list = stack.get("/api/v1/conversations");
    let list = send(list, &[cookie, ("origin", EVIL)]).await;
    assert_eq!(list.status(), 200, "a read is not a state change");
    let page: Value = list.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    let id = conversation["id"].as_str().unwrap();
    let path = format!("/api/v1/conversations/{id}");
    let one = send(stack.get(&path), &[cookie]).await;
    assert_eq!(one.status(), 200);
    let delete = stack.http.delete(format!("{}{path}", stack.gateway));
    let deleted = send(delete, &[cookie, ("origin", EVIL)]).await;
    assert_eq!(deleted.status(), 403);

    // A bearer token is not a browser's doing: no Origin rule, and it wins
    // over the cookie.
    let by_bob = stack
        .post("/api/v1/conversations")
        .bearer_auth(&bob.token)
        .json(&json!({}));
    let as_bob = send(by_bob, &[cookie, ("origin", EVIL)]).await;
    assert_eq!(as_bob.status(), 201);
    assert_eq!(conversation_count(&stack, &bob.token).await, 1);
    assert_eq!(conversation_count(&stack, &session.access).await, 2);
}

#[tokio::test]
async fn a_cookie_websocket_opens_only_from_a_trusted_origin() {
    let stack = Stack::start().await;
    let session = registered(&stack, "ada").await;
    let cookie = session.access_cookie();
    let chat = format!("{}/ws/chat", stack.gateway);

    let mut ws = try_connect_with(&chat, &[("cookie", &cookie), ("origin", &stack.gateway)])
        .await
        .unwrap();
    ws.send(json!({"type": "init_session", "data": {}})).await;
    let ready = ws.json().await;
    assert_eq!(ready["type"], "session_ready", "{ready}");
    ws.close(1000, "done").await;

    let mut trace = try_connect_with(
        &format!("{}/ws/trace/math", stack.gateway),
        &[("cookie", &cookie), ("origin", &stack.gateway)],
    )
    .await
    .unwrap();
    trace.close(1000, "done").await;

    // A client outside any browser may leave Origin out with the marker.
    let mut marked = try_connect_with(&chat, &[("cookie", &cookie), MARKER])
        .await
        .unwrap();
    marked.close(1000, "done").await;

    // Cross-site WebSocket hijacking: refused before any upstream sees it.
    for headers in [
        vec![("cookie", cookie.as_str()), ("origin", EVIL)],
        vec![("cookie", cookie.as_str())],
    ] {
        for url in [&chat, &format!("{}/ws/trace/math", stack.gateway)] {
            match try_connect_with(url, &headers).await {
                Err(WsError::Http(response)) => {
                    assert_eq!(response.status(), 403, "{url} {headers:?}");
                    let body: Value =
                        serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
                    assert_eq!(body["error"]["code"], "csrf_rejected");
                }
                other => panic!("{url} {headers:?}: {:?}", other.err()),
            }
        }
    }
    // A query token is not the browser's doing: no Origin rule.
    let access = session.access.clone();
    let mut query = try_connect_with(&format!("{chat}?token={access}"), &[("origin", EVIL)])
        .await
        .unwrap();
    query.close(1000, "done").await;
}

#[tokio::test]
async fn an_invalid_or_hostile_cookie_gets_401_not_500() {
    let stack = Stack::start().await;
    let session = registered(&stack, "ada").await;
    // One character of the signature changed (not the last: its low bits
    // are padding).
    let forged = {
        let mut chars: Vec<char> = session.access.chars().collect();
        let at = chars.len() - 10;
        chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect::<String>()
    };
    let unsigned = {
        use base64::Engine;
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            b64(json!({"alg": "none", "typ": "JWT"})),
            b64(json!({"sub": "usr-x", "name": "x", "role": "admin", "exp": 4_000_000_000u64}))
        )
    };
    let hostile = [
        "garbage".to_owned(),
        "x".repeat(6000),
        "a.b.c".to_owned(),
        "%00%ff%zz".to_owned(),
        "\"quoted\"".to_owned(),
        forged,
        unsigned,
    ];
    for value in &hostile {
        let cookie = format!("confab_access={value}");
        let me = me_by_cookie(&stack, value).await;
        assert_eq!(me.status(), 401, "{value:.40}");
        assert_eq!(error_code(me).await, "unauthorized");
        let proxied = send(stack.get("/api/v1/conversations"), &[("cookie", &cookie)]).await;
        assert_eq!(proxied.status(), 401, "{value:.40}");
        let ws = try_connect_with(
            &format!("{}/ws/chat", stack.gateway),
            &[("cookie", &cookie), ("origin", &stack.gateway)],
        )
        .await;
        match ws {
            Err(WsError::Http(response)) => assert_eq!(response.status(), 401),
            other => panic!("{value:.40}: {:?}", other.err()),
        }
        let refresh = marked_refresh(&stack, value).await;
        let context = format!("{value:.40}");
        assert_refused_and_cleared(refresh, "invalid_refresh_token", &context).await;
    }
    // A Cookie header that is not UTF-8 is no cookie at all.
    let binary = stack
        .get("/api/v1/auth/me")
        .header(
            "cookie",
            reqwest::header::HeaderValue::from_bytes(b"confab_access=\xff\xfe").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(binary.status(), 401);
    // An empty cookie is no token.
    let empty = me_by_cookie(&stack, "").await;
    assert_eq!(empty.status(), 401);
}

#[tokio::test]
async fn cookies_are_secure_over_https_and_the_origin_follows_the_scheme() {
    let stack = Stack::start().await;
    stack.register("ada", PASSWORD).await;
    let https_origin = stack.gateway.replacen("http://", "https://", 1);
    // A TLS terminator in front says X-Forwarded-Proto: https; the page's
    // origin is then https://…
    let https = ("x-forwarded-proto", "https");
    let plain_origin = ("origin", stack.gateway.as_str());
    let plain = login(&stack, "ada", PASSWORD, &[MARKER, https, plain_origin]).await;
    assert_eq!(plain.status(), 403);
    let origin = ("origin", https_origin.as_str());
    let response = login(&stack, "ada", PASSWORD, &[MARKER, https, origin]).await;
    assert_eq!(response.status(), 200);
    let lines = set_cookies(&response);
    for name in ["confab_access", "confab_refresh"] {
        let (_, attrs) = parse_line(line_of(&lines, name));
        assert!(attrs.contains(&"secure".to_owned()), "{lines:?}");
    }
    let cookie = format!("confab_refresh={}", cookie_value(&lines, "confab_refresh"));
    let logout = send(stack.post(LOGOUT), &[("cookie", &cookie), https, origin]).await;
    assert_eq!(logout.status(), 204);
    for line in set_cookies(&logout) {
        assert!(line.contains("; Secure"), "{line}");
        assert!(line.contains("Max-Age=0"), "{line}");
    }
}

#[tokio::test]
async fn settings_force_secure_cookies_and_trust_another_origin() {
    let stack = Stack::start_with(|settings| {
        settings.browser.secure_cookies = true;
        settings.browser.trusted_origins = vec!["https://console.example".into()];
    })
    .await;
    stack.register("ada", PASSWORD).await;
    let console = ("origin", "https://console.example");
    let response = login(&stack, "ada", PASSWORD, &[MARKER, console]).await;
    assert_eq!(response.status(), 200);
    let lines = set_cookies(&response);
    assert!(lines.iter().all(|l| l.contains("; Secure")), "{lines:?}");
    let cookie = format!("confab_access={}", cookie_value(&lines, "confab_access"));
    let create = || stack.post("/api/v1/conversations").json(&json!({}));
    let created = send(create(), &[("cookie", &cookie), console]).await;
    assert_eq!(created.status(), 201);
    let other = ("origin", "https://other.example");
    assert_eq!(
        send(create(), &[("cookie", &cookie), other]).await.status(),
        403
    );
}

#[tokio::test]
async fn the_upstream_never_sees_the_gateways_cookies() {
    let (stack, echo) = stack_with_echo(|_| {}).await;
    let session = registered(&stack, "ada").await;
    let both = format!(
        "theme=dark; {}; lang=en; {}",
        session.access_cookie(),
        session.refresh_cookie()
    );
    // An auth-injected route signed in by the cookie, and a plain one.
    for path in ["/echo/x", "/raw/x"] {
        let seen = send(stack.get(path), &[("cookie", &both)]).await;
        let seen: Value = seen.json().await.unwrap();
        assert_eq!(
            seen["headers"]["cookie"],
            json!(["theme=dark; lang=en"]),
            "{path}"
        );
        let request = stack.post(path).json(&json!({"a": 1}));
        let headers = [
            ("cookie", &*session.access_cookie()),
            ("origin", &stack.gateway),
        ];
        let only: Value = send(request, &headers).await.json().await.unwrap();
        assert!(only["headers"].get("cookie").is_none(), "{path}: {only}");
        assert!(!only.to_string().contains(&session.access), "{path}");
    }
    let seen = echo.received.lock().unwrap().clone();
    let injected = &seen[0]["headers"];
    assert_eq!(
        injected["x-user-id"].as_array().unwrap().len(),
        1,
        "{injected}"
    );

    // A WebSocket handshake too (the echo answers it with a refusal).
    let result = try_connect_with(
        &format!("{}/echo/ws", stack.gateway),
        &[("cookie", &both), ("origin", &stack.gateway)],
    )
    .await;
    assert!(result.is_err());
    let received = echo.received.lock().unwrap().clone();
    let handshake = received.last().unwrap();
    assert_eq!(handshake["path"], "/echo/ws", "{handshake}");
    assert_eq!(
        handshake["headers"]["cookie"],
        json!(["theme=dark; lang=en"])
    );
    assert!(handshake["headers"]["x-user-id"].is_array(), "{handshake}");
    assert!(
        !received
            .iter()
            .any(|r| r.to_string().contains(&session.refresh))
    );
}

#[tokio::test]
async fn no_other_origin_is_ever_allowed_to_send_the_console_marker() {
    for allowed in ["http://app.example.com", "*"] {
        let stack = Stack::start_with(|settings| {
            settings.cors.allowed_origins = vec![allowed.into()];
        })
        .await;
        let url = format!("{}{LOGOUT}", stack.gateway);
        let headers = [
            ("origin", "http://app.example.com"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "x-confab-client"),
        ];
        let preflight = send(stack.http.request(reqwest::Method::OPTIONS, url), &headers).await;
        assert!(!preflight.status().is_success(), "{allowed}");
        let allowed_headers = preflight
            .headers()
            .get("access-control-allow-headers")
            .map(|v| v.to_str().unwrap().to_lowercase())
            .unwrap_or_default();
        assert!(!allowed_headers.contains("x-confab-client"), "{allowed}");
    }
}

#[tokio::test]
async fn an_admin_signed_in_by_cookie_rotates_keys_only_from_the_console() {
    let stack = Stack::start_with_admin().await;
    let response = login(&stack, ADMIN_NAME, ADMIN_PASSWORD, &[MARKER]).await;
    let lines = set_cookies(&response);
    let access = cookie_value(&lines, "confab_access");
    let cookie = ("cookie", &*format!("confab_access={access}"));
    let keys = "/api/v1/admin/signing-keys";
    let listed = send(stack.get(keys), &[cookie]).await;
    assert_eq!(listed.status(), 200);
    let cross_site = send(stack.post(keys), &[cookie, ("origin", EVIL)]).await;
    assert_eq!(cross_site.status(), 403);
    assert_eq!(error_code(cross_site).await, "csrf_rejected");
    let rotated = send(stack.post(keys), &[cookie, ("origin", &stack.gateway)]).await;
    assert_eq!(rotated.status(), 201);
}
