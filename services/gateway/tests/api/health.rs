//! Every service answers /health, /ready and /metrics, carries X-Request-Id,
//! and answers unknown routes with the JSON error body. The gateway's
//! /metrics is for the service token and admins only.

use crate::common::{Stack, assert_error, error_code, fetch_json, send};

#[tokio::test]
async fn every_service_reports_health_readiness_and_metrics() {
    let stack = Stack::start().await;
    let services = [
        ("gateway", &stack.gateway),
        ("chat-service", &stack.chat),
        ("llm-proxy-service", &stack.llm),
        ("demo-agents", &stack.math_agent),
    ];
    for (name, base) in services {
        let health = fetch_json(stack.http.get(format!("{base}/health"))).await;
        assert_eq!(health["status"], "ok", "{name}");
        assert_eq!(health["service"], name);
        assert!(health["version"].as_str().is_some());

        let ready = send(stack.http.get(format!("{base}/ready"))).await;
        assert_eq!(ready.status(), 200, "{name}");

        // The gateway serves its metrics to the service token only (or an
        // admin); the services behind it to anyone who reaches them.
        let metrics = stack.http.get(format!("{base}/metrics"));
        let metrics = send(metrics.header("x-service-token", &stack.service_token)).await;
        assert_eq!(metrics.status(), 200);
        let text = metrics.text().await.unwrap();
        assert!(
            text.contains("http_request_duration_seconds"),
            "{name}: {text}"
        );
    }
}

#[tokio::test]
async fn request_ids_are_kept_or_made() {
    let stack = Stack::start().await;
    let given = send(
        stack
            .get("/health")
            .header("x-request-id", "req-from-client-1"),
    )
    .await;
    assert_eq!(given.headers()["x-request-id"], "req-from-client-1");

    let made = send(stack.http.get(format!("{}/health", stack.chat))).await;
    let id = made.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
}

#[tokio::test]
async fn unknown_routes_answer_with_the_json_error_body() {
    let stack = Stack::start().await;
    // On the gateway an unknown path outside the APIs is a deep link into
    // the web console (tests/console.rs); an unknown API path is not found.
    for url in [
        format!("{}/api/v1/no/such/thing", stack.gateway),
        format!("{}/no/such/thing", stack.chat),
        format!("{}/no/such/thing", stack.llm),
    ] {
        let response = send(stack.http.get(&url)).await;
        assert_error(response, 404, "not_found", &url).await;
    }
}

#[tokio::test]
async fn the_gateways_metrics_are_for_the_service_token_and_admins_only() {
    let stack = Stack::start_with_admin().await;
    let user = stack.user("ada").await;
    let admin_token = stack.admin_token().await;
    let admin_token = admin_token.as_str();
    let metrics = || stack.get("/metrics");

    // Refused: nobody, a plain user, a wrong service token, a broken token.
    for (what, request, status) in [
        ("anonymous", metrics(), 401),
        ("a plain user", metrics().bearer_auth(&user.token), 403),
        (
            "a wrong service token",
            metrics().header("x-service-token", "guessed-service-token"),
            401,
        ),
        (
            "a wrong service token with an admin token",
            metrics()
                .header("x-service-token", "guessed-service-token")
                .bearer_auth(admin_token),
            401,
        ),
        ("a broken token", metrics().bearer_auth("not.a.token"), 401),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{what}");
        let code = error_code(response).await;
        assert!(
            ["unauthorized", "forbidden"].contains(&code.as_str()),
            "{what}: {code}"
        );
    }
    // The same path spelled with an escape reaches the same guard.
    let escaped = send(stack.get("/%6Detrics")).await;
    assert_ne!(escaped.status(), 200);

    // Served: the service token, an admin.
    for (what, request) in [
        (
            "the service token",
            metrics().header("x-service-token", &stack.service_token),
        ),
        ("an admin", metrics().bearer_auth(admin_token)),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{what}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain"),
            "{what}"
        );
        let text = response.text().await.unwrap();
        assert!(
            text.contains("# TYPE http_request_duration_seconds"),
            "{what}: {text}"
        );
    }

    // Health and readiness stay public.
    for path in ["/health", "/ready"] {
        let response = send(stack.get(path)).await;
        assert_eq!(response.status(), 200, "{path}");
    }
}
