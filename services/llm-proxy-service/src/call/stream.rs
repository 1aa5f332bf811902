//! A streamed answer: forwarded chunk by chunk, assembled and traced on the
//! way, ended with `[DONE]` or an error frame, then recorded. The frames
//! that arrived together reach the client in one write: the response body
//! joins them (`confab_kit::coalesce`).

use actix_web::web::Bytes;
use confab_protocol::openai::{ErrorBody, ToolCall};
use confab_protocol::trace::TraceKind;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde_json::json;
use tokio::sync::mpsc;

use super::assembly::{Assembly, ChunkView, recorded_response};
use super::gen_ai;
use super::record::{CallState, Spent, finish};
use super::respond::add_cost;
use crate::AppState;
use crate::pricing::Tokens;
use crate::providers::UpstreamError;

/// Chunks buffered towards a slow client; when full, reading the upstream
/// waits, so memory per stream stays bounded.
pub(super) const STREAM_BUFFER: usize = 32;

/// Forwards a stream to the client chunk by chunk, then records the call.
pub(super) async fn forward(
    state: AppState,
    mut call: CallState,
    mut upstream: BoxStream<'static, Result<String, UpstreamError>>,
    include_usage: bool,
    tx: mpsc::Sender<Bytes>,
) {
    let active = metrics::gauge!("llm_proxy_streams_active");
    active.increment(1);
    let mut assembly = Assembly::default();
    // Priced once the usage came (the price of an unpriced model is looked
    // up, counted and warned about once a call).
    let mut spent: Option<Spent> = None;
    let mut error = None;
    while let Some(item) = upstream.next().await {
        let data = match item {
            Ok(data) => data,
            Err(err) => {
                error = Some(err.to_string());
                break;
            }
        };
        call.first_chunk_now();
        let chunk: Option<ChunkView> = serde_json::from_str(&data).ok();
        if let Some(delta) = chunk.as_ref().and_then(|c| assembly.add(c)) {
            state
                .hub
                .publish(&call.events, TraceKind::Delta, delta)
                .await;
        }
        // The usage chunk the proxy asked for on its own account.
        let usage_only = chunk
            .as_ref()
            .is_some_and(|c| c.choices.is_empty() && c.usage.is_some());
        if usage_only && !include_usage {
            continue;
        }
        // A chunk with the usage (once a stream, at its end) carries the
        // call's cost, as a whole completion does (`respond::complete`).
        let data = match chunk.as_ref().and_then(|c| c.usage) {
            Some(_) => {
                let now = spent_of(&state, &call, &assembly);
                spent = Some(now);
                with_cost(data, now.cost_nanos)
            }
            None => data,
        };
        if tx.send(frame(&data)).await.is_err() {
            error = Some("the client disconnected".to_owned());
            break;
        }
    }
    if error.is_none() && assembly.finish_reason.is_none() {
        error = Some("the upstream stream ended before the model finished".into());
    }
    let spent = match spent {
        Some(spent) if spent.tokens == tokens_of(&assembly) => spent,
        _ => spent_of(&state, &call, &assembly),
    };
    let tool_calls: Vec<ToolCall> = assembly.tool_calls.into_values().collect();
    gen_ai::record_response(
        &mut call,
        assembly.model.as_deref(),
        assembly.finish_reason.as_deref(),
        &assembly.content,
        &tool_calls,
    );
    for tool_call in &tool_calls {
        state
            .hub
            .publish(&call.events, TraceKind::ToolCall, json!(tool_call))
            .await;
    }
    let usage = assembly.usage.unwrap_or_default();
    let response = recorded_response(
        &assembly.content,
        &tool_calls,
        Some(&usage),
        assembly.finish_reason.as_deref(),
    );
    let last_frame = match &error {
        None => {
            state
                .hub
                .publish(&call.events, TraceKind::Response, response.clone())
                .await;
            Bytes::from_static(b"data: [DONE]\n\n")
        }
        Some(message) => {
            state
                .hub
                .publish(
                    &call.events,
                    TraceKind::Error,
                    json!({"error": message, "partial": response}),
                )
                .await;
            let frame = ErrorBody::new(message.as_str(), "upstream_error", "stream_broken");
            let frame = serde_json::to_string(&frame).unwrap_or_default();
            Bytes::from(format!("data: {frame}\n\n"))
        }
    };
    // Queued for writing before the client sees the end of the stream: once
    // a response is complete its row cannot be lost to a shutdown.
    finish(
        &state,
        call,
        Some(response.to_string()),
        spent,
        tool_calls,
        error,
    )
    .await;
    let _ = tx.send(last_frame).await;
    active.decrement(1);
}

fn tokens_of(assembly: &Assembly) -> Tokens {
    let usage = assembly.usage.unwrap_or_default();
    Tokens {
        input: usage.prompt_tokens,
        cached_input: assembly.cached_input_tokens,
        output: usage.completion_tokens,
    }
}

fn spent_of(state: &AppState, call: &CallState, assembly: &Assembly) -> Spent {
    let tokens = tokens_of(assembly);
    Spent {
        tokens,
        cost_nanos: call.cost_nanos(state, tokens),
    }
}

/// The chunk `data` with the call's cost in its `usage` (the chunk is
/// parsed and written again: once a stream). Unchanged when the cost is
/// unknown.
fn with_cost(data: String, cost_nanos: Option<i64>) -> String {
    if cost_nanos.is_none() {
        return data;
    }
    match serde_json::from_str::<serde_json::Value>(&data) {
        Ok(mut chunk) => {
            add_cost(&mut chunk, cost_nanos);
            chunk.to_string()
        }
        Err(_) => data,
    }
}

/// A chunk's SSE frame.
fn frame(data: &str) -> Bytes {
    let mut frame = Vec::with_capacity(data.len() + 8);
    frame.extend_from_slice(b"data: ");
    frame.extend_from_slice(data.as_bytes());
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}
