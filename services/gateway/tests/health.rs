//! Every service answers /health, /ready and /metrics, carries X-Request-Id,
//! and answers unknown routes with the JSON error body.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

mod common;

use common::{Stack, error_code};
use serde_json::Value;

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
        let health: Value = stack
            .http
            .get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health["status"], "ok", "{name}");
        assert_eq!(health["service"], name);
        assert!(health["version"].as_str().is_some());

        let ready = stack
            .http
            .get(format!("{base}/ready"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200, "{name}");

        let metrics = stack
            .http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap();
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
    let given = stack
        .http
        .get(format!("{}/health", stack.gateway))
        .header("x-request-id", "req-from-client-1")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "req-from-client-1");

    let made = stack
        .http
        .get(format!("{}/health", stack.chat))
        .send()
        .await
        .unwrap();
    let id = made.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
}

#[tokio::test]
async fn unknown_routes_answer_with_the_json_error_body() {
    let stack = Stack::start().await;
    for base in [&stack.gateway, &stack.chat, &stack.llm] {
        let response = stack
            .http
            .get(format!("{base}/no/such/thing"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
        assert_eq!(error_code(response).await, "not_found");
    }
}
