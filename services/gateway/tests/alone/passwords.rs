//! Password hashing runs a bounded number of hashes at once (issue 16,
//! item 6): a login flood queues instead of taking 19 MiB per attempt, all
//! at once. Seen on the gateway's `/metrics`, where the hashing path counts
//! the hashes running and the most that ever ran at once.
//!
//! One test in its own binary: the metrics recorder is per process, and no
//! other gateway here may hash while it reads the counts.

use confab_kit::testing::{metric, metrics_page};

use crate::common::Stack;

/// Logins sent at once; each verifies a password (an unknown user's
/// against the dummy hash).
const FLOOD: usize = 12;

/// Floods the gateway with `FLOOD` logins at once and answers the most
/// hashes that ran at once, as `/metrics` reports it.
async fn peak_under_a_login_flood(stack: &Stack) -> u64 {
    let logins = (0..FLOOD).map(|n| {
        stack
            .http
            .post(format!("{}/api/v1/auth/login", stack.gateway))
            .json(&serde_json::json!({"username": format!("nobody{n}"), "password": "wrong password"}))
            .send()
    });
    for response in futures_util::future::join_all(logins).await {
        assert_eq!(response.unwrap().status(), 401);
    }
    let metrics = metrics_page(&stack.http, &stack.gateway, Some(&stack.service_token)).await;
    let gauge =
        |name: &str| metric(&metrics, name).unwrap_or_else(|| panic!("no {name}: {metrics}"));
    // The flood is over: nothing runs or waits.
    assert_eq!(gauge("gateway_password_hashes_running"), 0.0);
    assert_eq!(gauge("gateway_password_hashes_waiting"), 0.0);
    gauge("gateway_password_hashes_running_peak") as u64
}

#[tokio::test]
async fn a_login_flood_runs_at_most_the_configured_hashes_at_once() {
    let bounded = Stack::start_with(|settings| {
        settings.limits.password_hashes = 2;
        settings.rate_limits.login_per_minute = 0;
    })
    .await;
    let peak = peak_under_a_login_flood(&bounded).await;
    assert_eq!(peak, 2, "{FLOOD} logins at once ran {peak} hashes at once");

    // The same flood with room for all: the count sees them run together,
    // which is what the bound above held back. (A new gateway starts its
    // own count; the first one hashes nothing more.)
    let roomy = Stack::start_with(|settings| {
        settings.limits.password_hashes = 64;
        settings.rate_limits.login_per_minute = 0;
    })
    .await;
    let peak = peak_under_a_login_flood(&roomy).await;
    assert!(
        peak > 2,
        "{FLOOD} logins at once ran only {peak} hashes at once"
    );
}
