//! Many instances (DESIGN §15): an upstream of several instances behind one
//! gateway, each a real echo server (or a port that refuses), and two
//! gateways sharing one database (and, on NATS, one bus: their rate limits).

use std::time::Duration;

use confab_kit::bus::TEST_NATS_ENV;
use gateway::proxy::instances::UpstreamConfig;
use serde_json::{Value, json};

use crate::common::echo::{Echo, refusing_url, route, stack_with_echo};
use crate::common::ws::{connect, try_connect};
use crate::common::{Stack, USER_PASSWORD, error_code, fetch_json, kid_of, send};

/// The stack whose upstream `pair` is made of `urls`, behind `/pair`
/// (plain requests) and `/pair-socket` (its WebSocket), with refusing
/// instances skipped for `retry_secs`.
async fn stack_with_pair(urls: Vec<String>, retry_secs: u64) -> Stack {
    let (stack, _echo) = stack_with_echo(move |settings| {
        settings
            .upstreams
            .insert("pair".into(), UpstreamConfig::from(urls));
        settings
            .extra_routes
            .push(route("/pair-socket", "pair", "/socket", false));
        settings
            .extra_routes
            .push(route("/pair", "pair", "/raw", false));
        settings.timeouts.instance_retry_secs = retry_secs;
        // Not the echo stack's 2 s (its test of a slow upstream): a busy
        // machine may take longer over a handshake, which would be a 504.
        settings.timeouts.response_secs = 60;
    })
    .await;
    stack
}

fn received(echo: &Echo) -> Vec<Value> {
    echo.received.lock().unwrap().clone()
}

/// How many connections the gateway failed to make to `instance` of `pair`,
/// as its `/metrics` counts them.
async fn connect_failures(stack: &Stack, instance: &str) -> u64 {
    let metrics =
        confab_kit::testing::metrics_page(&stack.http, &stack.gateway, Some(&stack.service_token))
            .await;
    metrics
        .lines()
        .find(|line| {
            line.starts_with("gateway_upstream_connect_failures_total{")
                && line.contains(r#"upstream="pair""#)
                && line.contains(&format!(r#"instance="{instance}""#))
        })
        .map_or(0, |line| line.rsplit(' ').next().unwrap().parse().unwrap())
}

/// The numbers of the bodies `post_numbered` sent that `echo` received, in
/// the order they arrived.
fn numbers(echo: &Echo) -> Vec<u64> {
    received(echo)
        .iter()
        .map(|seen| {
            let body: Value = serde_json::from_str(seen["body"].as_str().unwrap()).unwrap();
            body["n"].as_u64().unwrap()
        })
        .collect()
}

/// Posts `n` numbered bodies to `/pair`; every one must succeed.
async fn post_numbered(stack: &Stack, n: usize) {
    for i in 0..n {
        let response = send(stack.post("/pair/x").json(&json!({"n": i}))).await;
        assert_eq!(response.status(), 200, "request {i}");
    }
}

#[tokio::test]
async fn requests_spread_over_an_upstreams_instances_in_turn() {
    let (a, b) = (Echo::start().await, Echo::start().await);
    let stack = stack_with_pair(vec![a.url.clone(), b.url.clone()], 5).await;
    post_numbered(&stack, 10).await;
    // In turn, each request whole: a, b, a, b, …
    assert_eq!(numbers(&a), [0, 2, 4, 6, 8]);
    assert_eq!(numbers(&b), [1, 3, 5, 7, 9]);
}

#[tokio::test]
async fn a_refusing_instance_is_skipped_and_its_requests_go_to_the_next() {
    let live = Echo::start().await;
    let refusing = refusing_url();
    // An hour: nothing in this test lives long enough to try it again.
    let stack = stack_with_pair(vec![refusing.clone(), live.url.clone()], 3600).await;
    post_numbered(&stack, 10).await;
    // Every POST arrived once, body and all, the first after its
    // connection to the refusing instance failed.
    assert_eq!(numbers(&live), Vec::from_iter(0..10));
    assert_eq!(
        connect_failures(&stack, &refusing).await,
        1,
        "tried once, then skipped"
    );
}

#[tokio::test]
async fn a_skipped_instance_is_tried_again_after_the_retry_time() {
    let live = Echo::start().await;
    let refusing = refusing_url();
    let stack = stack_with_pair(vec![refusing.clone(), live.url.clone()], 1).await;
    post_numbered(&stack, 2).await;
    assert_eq!(received(&live).len(), 2);
    assert!(connect_failures(&stack, &refusing).await >= 1);

    // The instance comes up on its port; within the retry time (and a
    // generous margin) it takes requests again.
    let port = refusing.rsplit(':').next().unwrap();
    let back =
        Echo::start_on(std::net::TcpListener::bind(format!("127.0.0.1:{port}")).unwrap()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while received(&back).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the instance that came back got no request"
        );
        post_numbered(&stack, 1).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn when_every_instance_refuses_the_client_gets_502_after_each_was_tried() {
    let (first, second) = (refusing_url(), refusing_url());
    let stack = stack_with_pair(vec![first.clone(), second.clone()], 3600).await;
    let response = send(stack.post("/pair/x").json(&json!({"n": 1}))).await;
    assert_eq!(response.status(), 502);
    assert_eq!(error_code(response).await, "upstream_unavailable");
    assert_eq!(connect_failures(&stack, &first).await, 1);
    assert_eq!(connect_failures(&stack, &second).await, 1);
    // Both skipped now: a request still tries them rather than fail unasked.
    let response = send(stack.get("/pair/x")).await;
    assert_eq!(response.status(), 502);
    assert_eq!(connect_failures(&stack, &first).await, 2);
    assert_eq!(connect_failures(&stack, &second).await, 2);
    // A WebSocket upgrade too, with the same error body.
    let socket = try_connect(&format!("{}/pair-socket", stack.gateway), None).await;
    match socket {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 502);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["error"]["code"], "upstream_unavailable", "{body}");
        }
        other => panic!("expected a 502 handshake, got {:?}", other.map(|_| ())),
    }
}

/// The port of the echo that took a socket opened through `/pair-socket`,
/// from its first frame; the socket is closed after.
async fn socket_port(stack: &Stack) -> u64 {
    let mut ws = connect(&format!("{}/pair-socket", stack.gateway), None).await;
    let hello = ws.json().await;
    ws.close(1000, "done").await;
    hello["port"].as_u64().unwrap()
}

fn port_of(echo: &Echo) -> u64 {
    echo.url.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn websocket_upgrades_spread_over_the_instances_and_skip_a_refusing_one() {
    let (a, b) = (Echo::start().await, Echo::start().await);
    let stack = stack_with_pair(vec![a.url.clone(), b.url.clone()], 5).await;
    let mut ports = Vec::new();
    for _ in 0..4 {
        ports.push(socket_port(&stack).await);
    }
    assert_eq!(ports, [port_of(&a), port_of(&b), port_of(&a), port_of(&b)]);

    let refusing = refusing_url();
    let stack = stack_with_pair(vec![refusing.clone(), a.url.clone()], 3600).await;
    for _ in 0..4 {
        assert_eq!(socket_port(&stack).await, port_of(&a));
    }
    assert_eq!(connect_failures(&stack, &refusing).await, 1);
}

/// The `kid`s of the JWKS at `gateway`.
async fn jwks_kids(stack: &Stack, gateway: &str) -> Vec<String> {
    let jwks = fetch_json(stack.http.get(format!("{gateway}/.well-known/jwks.json"))).await;
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_key_rotated_on_one_gateway_verifies_on_another_sharing_its_database() {
    let stack = Stack::start_with_admin().await;
    let other = stack.another_gateway().await;
    let ada = stack.user("ada").await;
    let admin = stack.admin_token().await;
    let rotated = send(stack.post("/api/v1/admin/signing-keys").bearer_auth(&admin)).await;
    assert_eq!(rotated.status(), 201);
    let new_kid = rotated.json::<Value>().await.unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();

    // What a service fetches from the other gateway when a token names a
    // kid it does not know: the new key must be there, or the service
    // refuses the token until that gateway reads its keys again.
    let kids = jwks_kids(&stack, &other).await;
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert_eq!(kids[0], new_kid, "{kids:?}");

    // A token signed with the new key on the first gateway is accepted by
    // the other, and one signed there before the rotation still is.
    let fresh: Value = stack
        .login("ada", USER_PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let fresh = fresh["access_token"].as_str().unwrap();
    assert_eq!(kid_of(fresh), new_kid);
    for token in [fresh, ada.token.as_str()] {
        let me = send(
            stack
                .http
                .get(format!("{other}/api/v1/auth/me"))
                .bearer_auth(token),
        )
        .await;
        assert_eq!(me.status(), 200);
        assert_eq!(me.json::<Value>().await.unwrap()["username"], "ada");
    }

    // Having read the keys, the other gateway signs with the new one too.
    let login = send(
        stack
            .http
            .post(format!("{other}/api/v1/auth/login"))
            .json(&json!({"username": "ada", "password": USER_PASSWORD})),
    )
    .await;
    let tokens: Value = login.json().await.unwrap();
    assert_eq!(kid_of(tokens["access_token"].as_str().unwrap()), new_kid);
}

/// Whether two gateways can share a bus here: on NATS only, the in-process
/// bus joins the parts of one process, not two instances. CI runs these
/// with `CONFAB_TEST_NATS_URL` set; without it they say so and pass.
fn shared_bus() -> bool {
    let named = std::env::var(TEST_NATS_ENV).is_ok();
    if !named {
        eprintln!("{TEST_NATS_ENV} is not set: two gateways sharing limits need NATS; skipped");
    }
    named
}

/// `POST /api/v1/auth/login` on `gateway`.
async fn login_on(stack: &Stack, gateway: &str, password: &str) -> reqwest::Response {
    send(
        stack
            .http
            .post(format!("{gateway}/api/v1/auth/login"))
            .json(&json!({"username": "ada", "password": password})),
    )
    .await
}

#[tokio::test]
async fn the_eleventh_login_a_minute_from_one_ip_is_refused_whichever_gateways_served_the_ten() {
    if !shared_bus() {
        return;
    }
    let stack = Stack::start().await;
    let other = stack.another_gateway().await;
    stack.register("ada", USER_PASSWORD).await;
    // Ten attempts spread over both, right and wrong passwords alike.
    for attempt in 0..10 {
        let gateway = [&stack.gateway, &other][attempt % 2];
        let password = [USER_PASSWORD, "wrong password"][attempt / 2 % 2];
        let status = login_on(&stack, gateway, password).await.status();
        assert_ne!(status, 429, "attempt {attempt} on {gateway}");
    }
    for gateway in [&stack.gateway, &other] {
        let limited = login_on(&stack, gateway, USER_PASSWORD).await;
        assert_eq!(limited.status(), 429, "{gateway}");
        let retry_after: u64 = limited.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        // Ten a minute: one more every 6 s.
        assert!((1..=6).contains(&retry_after), "{retry_after}");
        assert_eq!(error_code(limited).await, "rate_limited");
    }
}

#[tokio::test]
async fn a_users_chat_posts_are_counted_across_gateways() {
    if !shared_bus() {
        return;
    }
    let stack = Stack::start_with(|settings| settings.rate_limits.chat_posts_per_minute = 2).await;
    let other = stack.another_gateway().await;
    let ada = stack.user("ada").await;
    let bob = stack.user("bob").await;
    let create_on = |gateway: &str, token: &str| {
        send(
            stack
                .http
                .post(format!("{gateway}/api/v1/conversations"))
                .bearer_auth(token)
                .json(&json!({})),
        )
    };
    assert_eq!(create_on(&stack.gateway, &ada.token).await.status(), 201);
    assert_eq!(create_on(&other, &ada.token).await.status(), 201);
    for gateway in [&stack.gateway, &other] {
        let limited = create_on(gateway, &ada.token).await;
        assert_eq!(limited.status(), 429, "{gateway}");
        assert!(limited.headers().contains_key("retry-after"));
    }
    // Another user has their own allowance, on either.
    assert_eq!(create_on(&other, &bob.token).await.status(), 201);
}
