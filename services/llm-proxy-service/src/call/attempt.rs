//! Retries and fallback before the first byte reaches the client.

use std::time::Duration;

use serde::Deserialize;
use tracing::Instrument;

use super::record::CallState;
use crate::AppState;
use crate::providers::{Start, Target, UpstreamError};
use crate::request::ClientRequest;

#[derive(Debug, Clone, Deserialize)]
pub struct RetrySettings {
    /// Attempts per target before falling back to the next one.
    pub max_attempts: u32,
    /// First backoff; doubled for each further attempt.
    pub base_delay_ms: u64,
}

/// Why no upstream answered.
pub(super) enum Failure {
    /// Every target failed with retryable errors.
    Exhausted(String),
    /// An upstream refused the request: its answer goes to the client.
    Refused { status: u16, body: String },
}

/// Tries each target in order, each up to `max_attempts` times with
/// exponential backoff, until one answers.
pub(super) async fn attempt(
    state: &AppState,
    targets: &[Target],
    request: &ClientRequest,
    stream: bool,
    call: &mut CallState,
) -> Result<Start, Failure> {
    let mut last_error = String::from("no target");
    for target in targets {
        call.provider = target.provider.clone();
        call.upstream_model = Some(target.model.clone());
        for attempt in 0..state.retry.max_attempts.max(1) {
            call.attempts += 1;
            // One span per request to a provider, up to its first byte (a
            // stream's body is the call's span's): retries and fallbacks
            // show as siblings under the call.
            let span = tracing::info_span!(
                "provider.request",
                otel.name = %format!("upstream {}", target.provider),
                otel.kind = "client",
                gen_ai.provider.name = %target.provider,
                gen_ai.request.model = %target.model,
                // As i64: an unsigned field reaches the span as text.
                confab.attempt = i64::from(attempt) + 1,
                error.type = tracing::field::Empty,
            );
            let started = state
                .providers
                .start(target, request, stream)
                .instrument(span.clone())
                .await;
            match started {
                Ok(start) => return Ok(start),
                Err(UpstreamError::Refused { status, body }) => {
                    // The conventions' error.type of an HTTP answer: its status code.
                    span.record("error.type", status.to_string().as_str());
                    return Err(Failure::Refused { status, body });
                }
                Err(err @ (UpstreamError::Retryable(_) | UpstreamError::Broken(_))) => {
                    span.record("error.type", "_OTHER");
                    tracing::warn!(provider = %target.provider, model = %target.model, attempt = attempt + 1, error = %err, "upstream attempt failed");
                    last_error = err.to_string();
                    if attempt + 1 < state.retry.max_attempts {
                        let delay = state
                            .retry
                            .base_delay_ms
                            .saturating_mul(1 << attempt.min(16));
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                }
            }
        }
    }
    Err(Failure::Exhausted(last_error))
}
