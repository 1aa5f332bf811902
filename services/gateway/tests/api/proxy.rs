//! The routing table at work: identity stripped and injected, operator
//! routes, body limits, streams passed on as they come, upstream failures,
//! CORS and trace headers. Operator routes point at a plain echo server
//! (`crate::common::echo`) so the test sees what the gateway forwarded.

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::echo::{Echo, stack_with_echo};
use crate::common::{Stack, error_code, fetch_json, send};

#[tokio::test]
async fn forged_identity_from_a_client_never_reaches_an_upstream() {
    let (stack, _echo) = stack_with_echo(|_| {}).await;
    let user = stack.user("ada").await;
    let body = json!({"text": "hi", "_auth": {"user_id": "usr-victim", "role": "admin"}});
    let seen = fetch_json(
        stack
            .post("/echo/things?x=1")
            .bearer_auth(&user.token)
            .header("x-user-id", "usr-victim")
            .header("x-user-role", "admin")
            .header("x-user-name", "victim")
            .header("x-service-token", "guessed-token")
            .header("x-request-id", "req-abc")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .json(&body),
    )
    .await;
    let headers = &seen["headers"];
    assert_eq!(seen["path"], "/echo/things");
    assert_eq!(seen["query"], "x=1");
    assert_eq!(headers["x-user-id"], json!([user.id]));
    assert_eq!(headers["x-user-role"], json!(["user"]));
    assert_eq!(headers["x-user-name"], json!(["ada"]));
    assert_eq!(
        headers["x-service-token"],
        json!(["confab-dev-service-token"])
    );
    assert_eq!(headers["x-request-id"], json!(["req-abc"]));
    assert!(headers.get("authorization").is_none(), "{headers}");
    let forwarded: Value = serde_json::from_str(seen["body"].as_str().unwrap()).unwrap();
    assert_eq!(forwarded["_auth"]["user_id"], user.id.as_str());
    assert_eq!(forwarded["_auth"]["role"], "user");
    assert_eq!(forwarded["text"], "hi");
    // The body was rewritten: its length is the new one, not the client's.
    assert_eq!(
        headers["content-length"],
        json!([seen["body_len"].to_string()])
    );
    // The client's trace goes on, with the gateway's hop as the parent.
    let traceparent = headers["traceparent"][0].as_str().unwrap();
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(parts[2], "00f067aa0ba902b7");

    // On a route without auth injection the forged headers are dropped too.
    let raw = fetch_json(
        stack
            .post("/raw")
            .header("x-user-id", "usr-victim")
            .header("x-service-token", "confab-dev-service-token")
            .body("plain"),
    )
    .await;
    assert!(raw["headers"].get("x-user-id").is_none(), "{raw}");
    assert!(raw["headers"].get("x-service-token").is_none(), "{raw}");
    assert_eq!(raw["body"], "plain");
    // A new trace is started when the client sent none.
    let started = raw["headers"]["traceparent"][0].as_str().unwrap();
    assert_eq!(started.split('-').count(), 4, "{started}");
}

#[tokio::test]
async fn agent_and_conversation_headers_from_a_client_never_reach_an_upstream() {
    let (stack, echo) = stack_with_echo(|_| {}).await;
    let user = stack.user("ada").await;
    // With the service token the gateway adds, llm-proxy-service would take
    // these as the call's attribution: they are the gateway's to set, not a
    // client's.
    for path in ["/echo/x", "/raw/x"] {
        let seen = fetch_json(
            stack
                .post(path)
                .bearer_auth(&user.token)
                .header("x-agent-id", "math")
                .header("X-Conversation-Id", "conv-victim")
                .json(&json!({"text": "hi"})),
        )
        .await;
        let headers = &seen["headers"];
        assert!(headers.get("x-agent-id").is_none(), "{path}: {headers}");
        assert!(
            headers.get("x-conversation-id").is_none(),
            "{path}: {headers}"
        );
    }
    // A WebSocket handshake passes on the same headers as a request.
    let mut request = format!("{}/echo/ws?token={}", stack.gateway, user.token)
        .replacen("http", "ws", 1)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("x-agent-id", "math".parse().unwrap());
    request
        .headers_mut()
        .insert("x-conversation-id", "conv-victim".parse().unwrap());
    // The echo is no WebSocket server: it answers the handshake with 200.
    assert!(tokio_tungstenite::connect_async(request).await.is_err());
    let received = echo.received.lock().unwrap().clone();
    let handshake = received.last().unwrap();
    assert_eq!(handshake["path"], "/echo/ws", "{handshake}");
    assert_eq!(handshake["headers"]["upgrade"], json!(["websocket"]));
    assert!(
        handshake["headers"].get("x-agent-id").is_none(),
        "{handshake}"
    );
    assert!(
        handshake["headers"].get("x-conversation-id").is_none(),
        "{handshake}"
    );
}

#[tokio::test]
async fn an_operator_route_maps_its_own_prefix_onto_a_service() {
    let (stack, _echo) = stack_with_echo(|_| {}).await;
    let user = stack.user("ada").await;
    let legacy = stack.post("/api/legacy/chats").bearer_auth(&user.token);
    let created = send(legacy.json(&json!({"title": "via the operator's route"}))).await;
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The default route sees the same conversation.
    let conversation = format!("/api/v1/conversations/{id}");
    let got = fetch_json(stack.get(&conversation).bearer_auth(&user.token)).await;
    assert_eq!(got["title"], "via the operator's route");
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_whether_streamed_or_read() {
    let (stack, echo) = stack_with_echo(|settings| settings.limits.body_bytes = 64 * 1024).await;
    let user = stack.user("ada").await;
    let big = "x".repeat(100 * 1024);

    // Read whole (auth injected): refused.
    let body = json!({"text": big});
    let injected = send(stack.post("/echo").bearer_auth(&user.token).json(&body)).await;
    assert_eq!(injected.status(), 413);
    assert_eq!(error_code(injected).await, "body_too_large");

    // Declared too long: refused before anything is read.
    let declared = send(stack.post("/raw").body(big.clone())).await;
    assert_eq!(declared.status(), 413);

    // Streamed (chunked, no length): cut off once it passes the limit.
    let chunks = |n: usize| {
        futures_util::stream::iter((0..n).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 8 * 1024])))
    };
    let streamed = send(
        stack
            .post("/raw")
            .body(reqwest::Body::wrap_stream(chunks(13))),
    )
    .await;
    assert_eq!(streamed.status(), 413);
    assert_eq!(error_code(streamed).await, "body_too_large");
    assert!(
        echo.received.lock().unwrap().is_empty(),
        "no cut-off body reached the upstream as if whole"
    );

    // Under the limit, a streamed body arrives whole.
    let fits = fetch_json(
        stack
            .post("/raw")
            .body(reqwest::Body::wrap_stream(chunks(4))),
    )
    .await;
    assert_eq!(fits["body_len"], 32 * 1024);
    assert_eq!(fits["headers"]["transfer-encoding"], json!(["chunked"]));
}

/// The echo's `/sse` events as `response` delivers them. The upstream
/// holds the second event back until the first arrived here; a buffering
/// gateway would wait for it forever.
async fn sse_one_by_one(response: reqwest::Response, echo: &Echo) -> String {
    let mut body = response.bytes_stream();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("data: first\n\n") {
        seen.extend_from_slice(&body.next().await.unwrap().unwrap());
    }
    echo.release_second_event();
    while let Some(chunk) = body.next().await {
        seen.extend_from_slice(&chunk.unwrap());
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test]
async fn sse_events_pass_through_one_by_one() {
    let (stack, echo) = stack_with_echo(|_| {}).await;
    let response = send(stack.get("/sse")).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(
        sse_one_by_one(response, &echo).await,
        "data: first\n\ndata: second\n\n"
    );
}

#[tokio::test]
async fn an_upstream_named_in_proxy_http2_gets_every_request_as_a_stream_of_few_connections() {
    let (stack, echo) = stack_with_echo(|settings| {
        settings.server.workers = 1;
        settings.proxy.http2.push("echo".into());
    })
    .await;
    let user = stack.user("ada").await;
    let posts = (0..8).map(|n| {
        fetch_json(
            stack
                .post(&format!("/echo/things/{n}"))
                .bearer_auth(&user.token)
                .json(&json!({"n": n})),
        )
    });
    let seen = futures_util::future::join_all(posts).await;
    let mut ports = std::collections::BTreeSet::new();
    for (n, seen) in seen.iter().enumerate() {
        assert_eq!(seen["version"], "HTTP/2.0", "{seen}");
        assert_eq!(seen["path"], format!("/echo/things/{n}"));
        // The body arrived whole, with the identity injected.
        let body: Value = serde_json::from_str(seen["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["n"], n);
        assert_eq!(body["_auth"]["user_id"], user.id.as_str());
        assert!(seen["headers"].get("host").is_none(), "{seen}");
        ports.insert(seen["peer_port"].to_string());
    }
    // One worker: one connection, the burst's first request opened it
    // and the others waited for it.
    assert_eq!(ports.len(), 1, "{ports:?}");
    // Streams come through frame by frame over HTTP/2 too.
    assert_eq!(
        sse_one_by_one(send(stack.get("/sse")).await, &echo).await,
        "data: first\n\ndata: second\n\n"
    );
    // An upstream not named there is called over HTTP/1.1.
    let (plain, _echo) = stack_with_echo(|_| {}).await;
    let seen = fetch_json(plain.get("/raw/x")).await;
    assert_eq!(seen["version"], "HTTP/1.1");
}

#[tokio::test]
async fn an_upstream_that_is_down_gets_502_and_a_slow_one_504() {
    let (stack, _echo) = stack_with_echo(|_| {}).await;
    let down = send(stack.get("/down")).await;
    assert_eq!(down.status(), 502);
    assert_eq!(error_code(down).await, "upstream_unavailable");
    let slow = send(stack.get("/slow")).await;
    assert_eq!(slow.status(), 504);
    assert_eq!(error_code(slow).await, "upstream_timeout");
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_and_replaced_once_closed() {
    // One worker: every request below uses the same worker's connections.
    let (stack, echo) = stack_with_echo(|settings| settings.server.workers = 1).await;
    let peer_port = || async {
        let response = send(stack.get("/raw/keep-alive")).await;
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()["peer_port"]
            .as_u64()
            .unwrap()
    };
    let first = peer_port().await;
    for _ in 0..3 {
        assert_eq!(
            peer_port().await,
            first,
            "sequential requests share one connection"
        );
    }

    // A reply the client abandons half read: while it is read, its
    // connection carries nothing else; abandoned, it cannot be reused, and
    // the next request must not notice.
    let mut abandoned = send(stack.get("/sse")).await.bytes_stream();
    let event = abandoned.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&event).contains("first"));
    let during = peer_port().await;
    assert_ne!(
        during, first,
        "a connection still carrying a reply is not lent to another request"
    );
    drop(abandoned);
    echo.release_second_event();

    // The echo closes idle connections after KEEP_ALIVE: the gateway's idle
    // one is gone, and the next request goes over a new one.
    let before = peer_port().await;
    tokio::time::sleep(crate::common::echo::KEEP_ALIVE * 3).await;
    let after = peer_port().await;
    assert_ne!(after, before, "a closed connection is not reused");
    assert_eq!(peer_port().await, after);
}

/// The gateway's `/metrics` text.
async fn gateway_metrics(stack: &Stack) -> String {
    confab_kit::testing::metrics_page(&stack.http, &stack.gateway, Some(&stack.service_token)).await
}

#[tokio::test]
async fn proxied_requests_are_counted_under_their_routes_prefix() {
    let (stack, _echo) = stack_with_echo(|_| {}).await;
    let proxied = stack
        .http
        .get(format!("{}/raw/counted?x=1", stack.gateway))
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 200);
    let metrics = gateway_metrics(&stack).await;
    let counted = metrics.lines().any(|line| {
        line.starts_with("http_request_duration_seconds_count")
            && line.contains(r#"route="/raw""#)
            && line.contains(r#"status="200""#)
    });
    assert!(counted, "{metrics}");

    // An invented method is counted as OTHER (no series per method a client
    // makes up), and every request is counted, not only a series' first.
    for _ in 0..3 {
        let brewed = stack
            .http
            .request(
                reqwest::Method::from_bytes(b"BREW").unwrap(),
                format!("{}/raw/counted", stack.gateway),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(brewed.status(), 200);
    }
    let metrics = gateway_metrics(&stack).await;
    assert!(!metrics.contains("BREW"), "{metrics}");
    let other = metrics
        .lines()
        .find(|line| {
            line.starts_with("http_request_duration_seconds_count")
                && line.contains(r#"method="OTHER""#)
                && line.contains(r#"route="/raw""#)
        })
        .unwrap_or_else(|| panic!("no OTHER series: {metrics}"));
    assert!(other.ends_with(" 3"), "{other}");
}

#[tokio::test]
async fn cors_answers_configured_origins_only() {
    let (stack, _echo) = stack_with_echo(|settings| {
        settings.cors.allowed_origins = vec!["http://app.example.com".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        stack
            .request(reqwest::Method::OPTIONS, "/api/v1/conversations")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let allowed = preflight("http://app.example.com").await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://app.example.com"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );
    let refused = preflight("http://evil.example.com").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let user = stack.user("ada").await;
    let actual = stack
        .get("/api/v1/conversations")
        .bearer_auth(&user.token)
        .header("origin", "http://app.example.com");
    let actual = send(actual).await;
    assert_eq!(actual.status(), 200);
    assert_eq!(
        actual.headers()["access-control-allow-origin"],
        "http://app.example.com"
    );
    let exposed = actual.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("x-request-id"), "{exposed}");
}

#[tokio::test]
async fn without_configured_origins_no_cors_headers_are_sent() {
    let (stack, _echo) = stack_with_echo(|_| {}).await;
    let user = stack.user("ada").await;
    let health = stack
        .get("/health")
        .header("origin", "http://app.example.com");
    let proxied = stack
        .get("/api/v1/conversations")
        .bearer_auth(&user.token)
        .header("origin", "http://app.example.com");
    let plain = stack.get("/api/v1/conversations").bearer_auth(&user.token);
    let preflight = stack
        .request(reqwest::Method::OPTIONS, "/api/v1/conversations")
        .header("origin", "http://app.example.com")
        .header("access-control-request-method", "POST");
    for request in [health, proxied, plain, preflight] {
        let response = request.send().await.unwrap();
        let cors: Vec<_> = response
            .headers()
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-") || *name == "vary")
            .collect();
        assert!(cors.is_empty(), "{} {cors:?}", response.url());
    }
}
