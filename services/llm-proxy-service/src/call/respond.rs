//! The answers that are not streams: a whole completion, a failure, and the
//! headers every answer carries.

use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::header::{HeaderName, HeaderValue};
use confab_kit::ApiError;
use confab_protocol::openai::ChatCompletion;
use confab_protocol::trace::TraceKind;
use serde_json::{Value, json};

use super::assembly::cached_tokens;
use super::attempt::Failure;
use super::gen_ai;
use super::record::{CallState, Spent, finish};
use crate::AppState;
use crate::error::ProxyError;
use crate::pricing::{self, Tokens};

/// Header with the time the proxy itself added, in milliseconds.
pub const OVERHEAD_HEADER: &str = "x-confab-overhead-ms";
/// Header with the id of the call's `llm_calls` row, to look it up later.
pub const CALL_ID_HEADER: &str = "x-confab-call-id";

pub(super) fn with_overhead(
    mut response: HttpResponse,
    overhead: Duration,
    call_id: &str,
) -> HttpResponse {
    let ms = overhead.as_secs_f64() * 1000.0;
    for (name, value) in [
        (OVERHEAD_HEADER, format!("{ms:.3}")),
        (CALL_ID_HEADER, call_id.to_owned()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response
                .headers_mut()
                .insert(HeaderName::from_static(name), value);
        }
    }
    metrics::histogram!("llm_proxy_overhead_seconds").record(overhead.as_secs_f64());
    response
}

impl Failure {
    pub(super) async fn respond(
        self,
        state: &AppState,
        call: CallState,
        overhead: Duration,
    ) -> HttpResponse {
        let (message, response) = match self {
            Failure::Exhausted(reason) => {
                let refusal = ApiError::from(ProxyError::NoUpstream(reason));
                let response = actix_web::ResponseError::error_response(&refusal);
                let message = refusal.message().to_owned();
                (message, response)
            }
            Failure::Refused { status, body } => {
                let status = actix_web::http::StatusCode::from_u16(status)
                    .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY);
                let response = HttpResponse::build(status)
                    .content_type("application/json")
                    .body(body.clone());
                (
                    format!("upstream refused the request ({status}): {body}"),
                    response,
                )
            }
        };
        state
            .hub
            .publish(&call.events, TraceKind::Error, json!({"error": message}))
            .await;
        let call_id = call.id.clone();
        let spent = Spent {
            tokens: Tokens::default(),
            cost_nanos: Some(0),
        };
        finish(state, call, None, spent, Vec::new(), Some(message)).await;
        with_overhead(response, overhead, &call_id)
    }
}

/// A whole completion: recorded, traced, passed on unchanged but for the
/// call's cost, added to its `usage` as OpenRouter does (`usage.cost`, in
/// `[pricing] currency`; left out when the model has no price).
pub(super) async fn complete(
    state: &AppState,
    mut call: CallState,
    mut body: Value,
) -> HttpResponse {
    call.first_chunk_now();
    let parsed: Option<ChatCompletion> = serde_json::from_value(body.clone()).ok();
    let usage = parsed.as_ref().and_then(|c| c.usage).unwrap_or_default();
    let tokens = Tokens {
        input: usage.prompt_tokens,
        cached_input: body.get("usage").map_or(0, cached_tokens),
        output: usage.completion_tokens,
    };
    let spent = Spent {
        tokens,
        cost_nanos: call.cost_nanos(state, tokens),
    };
    add_cost(&mut body, spent.cost_nanos);
    let message = parsed
        .as_ref()
        .and_then(|c| c.choices.first())
        .map(|c| &c.message);
    let content = message.map(|m| m.text()).unwrap_or_default();
    let tool_calls = message
        .and_then(|m| m.tool_calls.clone())
        .unwrap_or_default();
    let finish_reason = parsed
        .as_ref()
        .and_then(|c| c.choices.first())
        .and_then(|c| c.finish_reason.clone());
    gen_ai::record_response(
        &mut call,
        parsed.as_ref().map(|c| c.model.as_str()),
        finish_reason.as_deref(),
        &content,
        &tool_calls,
    );
    for tool_call in &tool_calls {
        state
            .hub
            .publish(&call.events, TraceKind::ToolCall, json!(tool_call))
            .await;
    }
    state
        .hub
        .publish(
            &call.events,
            TraceKind::Response,
            json!({"content": content, "tool_calls": tool_calls, "usage": usage, "finish_reason": finish_reason}),
        )
        .await;
    let text = body.to_string();
    finish(state, call, Some(text.clone()), spent, tool_calls, None).await;
    HttpResponse::Ok()
        .content_type("application/json")
        .body(text)
}

/// Puts `cost` (currency units) into the `usage` object of a completion or
/// chunk, when it has one and the cost is known.
pub(super) fn add_cost(body: &mut Value, cost_nanos: Option<i64>) {
    let usage = body.get_mut("usage").and_then(Value::as_object_mut);
    if let (Some(usage), Some(nanos)) = (usage, cost_nanos) {
        usage.insert("cost".into(), json!(pricing::units(nanos)));
    }
}
