//! One LLM call through the proxy, from the first attempt to the recorded
//! row: retries and fallback before the first byte, streaming with usage and
//! tool calls assembled on the way, trace events, the GenAI span and the
//! overhead header.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use actix_web::HttpResponse;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::web::{Bytes, BytesMut};
use chrono::Utc;
use confab_kit::ApiError;
use confab_kit::ids::new_id;
use confab_protocol::openai::{
    ChatCompletion, ChatCompletionRequest, ErrorBody, ToolCall, ToolCallDelta, Usage,
};
use confab_protocol::trace::TraceKind;
use futures_util::{FutureExt, StreamExt};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::Instrument;

use crate::AppState;
use crate::auth::CallIdentity;
use crate::providers::{Start, Target, UpstreamError};
use crate::recorder::Record;
use crate::store::llm_calls::LlmCall;
use crate::store::tool_calls::ToolCallRow;
use crate::trace::hub::EventContext;

/// Header with the time the proxy itself added, in milliseconds.
pub const OVERHEAD_HEADER: &str = "x-confab-overhead-ms";
/// Header with the id of the call's `llm_calls` row, to look it up later.
pub const CALL_ID_HEADER: &str = "x-confab-call-id";

/// Chunks buffered towards a slow client; when full, reading the upstream
/// waits, so memory per stream stays bounded.
const STREAM_BUFFER: usize = 32;

#[derive(Debug, Clone, Deserialize)]
pub struct RetrySettings {
    /// Attempts per target before falling back to the next one.
    pub max_attempts: u32,
    /// First backoff; doubled for each further attempt.
    pub base_delay_ms: u64,
}

/// The call as the client made it.
pub struct CallRequest {
    pub identity: CallIdentity,
    pub body: Map<String, Value>,
    pub request: ChatCompletionRequest,
    pub raw: Bytes,
    pub started: Instant,
}

/// What is known about a call as it goes; becomes its `llm_calls` row.
struct CallState {
    id: String,
    events: EventContext,
    model: String,
    stream: bool,
    raw_request: String,
    started: Instant,
    provider: String,
    upstream_model: Option<String>,
    attempts: i64,
    first_chunk_ms: Option<i64>,
    span: tracing::Span,
}

pub async fn handle(state: &AppState, call: CallRequest) -> Result<HttpResponse, ApiError> {
    let targets = state
        .providers
        .resolve(&call.request.model)
        .ok_or_else(|| ApiError::not_found(&format!("model '{}'", call.request.model)))?;
    let stream = call.request.is_stream();
    let include_usage = call
        .request
        .stream_options
        .as_ref()
        .is_some_and(|o| o.include_usage);
    let id = new_id("call");
    let span = tracing::info_span!(
        "gen_ai.chat",
        otel.name = %format!("chat {}", call.request.model),
        gen_ai.operation.name = "chat",
        gen_ai.request.model = %call.request.model,
        gen_ai.provider.name = tracing::field::Empty,
        gen_ai.response.model = tracing::field::Empty,
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty,
        gen_ai.conversation.id = call.identity.conversation_id.as_deref().unwrap_or(""),
        gen_ai.agent.id = call.identity.agent_id.as_deref().unwrap_or(""),
        confab.call_id = %id,
    );
    let mut state_of_call = CallState {
        events: EventContext {
            call_id: id.clone(),
            agent_id: call.identity.agent_id.clone(),
            user_id: call.identity.user_id.clone(),
            conversation_id: call.identity.conversation_id.clone(),
        },
        id,
        model: call.request.model.clone(),
        stream,
        raw_request: String::from_utf8_lossy(&call.raw).into_owned(),
        started: call.started,
        provider: targets
            .first()
            .map(|t| t.provider.clone())
            .unwrap_or_default(),
        upstream_model: None,
        attempts: 0,
        first_chunk_ms: None,
        span: span.clone(),
    };
    state
        .hub
        .publish(
            &state_of_call.events,
            TraceKind::Request,
            Value::Object(call.body.clone()),
        )
        .instrument(span.clone())
        .await;

    let upstream_started = Instant::now();
    let started = attempt(state, &targets, &call.body, stream, &mut state_of_call)
        .instrument(span.clone())
        .await;
    let upstream_time = upstream_started.elapsed();
    let overhead = call.started.elapsed().saturating_sub(upstream_time);
    match started {
        Err(failure) => Ok(failure.respond(state, state_of_call, overhead).await),
        Ok(Start::Complete(body)) => {
            let call_id = state_of_call.id.clone();
            let response = complete(state, state_of_call, body).await;
            Ok(with_overhead(response, overhead, &call_id))
        }
        Ok(Start::Stream(upstream)) => {
            let call_id = state_of_call.id.clone();
            let (tx, rx) = mpsc::channel::<Bytes>(STREAM_BUFFER);
            tokio::spawn(
                forward(state.clone(), state_of_call, upstream, include_usage, tx).instrument(span),
            );
            let response = HttpResponse::Ok()
                .content_type("text/event-stream")
                .insert_header(("cache-control", "no-cache"))
                .streaming(ReceiverStream::new(rx).map(Ok::<_, Infallible>));
            Ok(with_overhead(response, overhead, &call_id))
        }
    }
}

fn with_overhead(mut response: HttpResponse, overhead: Duration, call_id: &str) -> HttpResponse {
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

/// Why no upstream answered.
enum Failure {
    /// Every target failed with retryable errors.
    Exhausted(String),
    /// An upstream refused the request: its answer goes to the client.
    Refused { status: u16, body: String },
}

impl Failure {
    async fn respond(self, state: &AppState, call: CallState, overhead: Duration) -> HttpResponse {
        let (message, response) = match self {
            Failure::Exhausted(reason) => {
                let message = format!("no upstream could answer: {reason}");
                let response = actix_web::ResponseError::error_response(&ApiError::bad_gateway(
                    message.clone(),
                ));
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
        finish(
            state,
            call,
            None,
            Usage::default(),
            Vec::new(),
            Some(message),
        )
        .await;
        with_overhead(response, overhead, &call_id)
    }
}

/// Tries each target in order, each up to `max_attempts` times with
/// exponential backoff, until one answers.
async fn attempt(
    state: &AppState,
    targets: &[Target],
    body: &Map<String, Value>,
    stream: bool,
    call: &mut CallState,
) -> Result<Start, Failure> {
    let mut last_error = String::from("no target");
    for target in targets {
        call.provider = target.provider.clone();
        call.upstream_model = Some(target.model.clone());
        for attempt in 0..state.retry.max_attempts.max(1) {
            call.attempts += 1;
            match state.providers.start(target, body, stream).await {
                Ok(start) => return Ok(start),
                Err(UpstreamError::Refused { status, body }) => {
                    return Err(Failure::Refused { status, body });
                }
                Err(err @ (UpstreamError::Retryable(_) | UpstreamError::Broken(_))) => {
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

/// A whole completion: recorded, traced, passed on unchanged.
async fn complete(state: &AppState, mut call: CallState, body: Value) -> HttpResponse {
    call.first_chunk_ms = Some(elapsed_ms(call.started));
    let parsed: Option<ChatCompletion> = serde_json::from_value(body.clone()).ok();
    let usage = parsed.as_ref().and_then(|c| c.usage).unwrap_or_default();
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
    if let Some(model) = parsed.as_ref().map(|c| c.model.clone()) {
        call.span.record("gen_ai.response.model", model.as_str());
    }
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
    finish(state, call, Some(text.clone()), usage, tool_calls, None).await;
    HttpResponse::Ok()
        .content_type("application/json")
        .body(text)
}

/// The parts of a streamed chunk the proxy reads. Deliberately not the full
/// `ChatCompletionChunk` (whose flattened extra fields make parsing several
/// times slower): every chunk of every stream is parsed on the hot path, and
/// the client gets the upstream's bytes, not a re-encoding.
#[derive(Deserialize)]
struct ChunkView {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<ChoiceView>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct ChoiceView {
    #[serde(default)]
    delta: DeltaView,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct DeltaView {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

/// What a stream said so far.
#[derive(Default)]
struct Assembly {
    content: String,
    tool_calls: BTreeMap<u32, ToolCall>,
    usage: Option<Usage>,
    finish_reason: Option<String>,
    model: Option<String>,
}

impl Assembly {
    /// Adds a chunk; returns the trace data of its delta, if it had one.
    fn add(&mut self, chunk: &ChunkView) -> Option<Value> {
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        if self.model.is_none() {
            self.model.clone_from(&chunk.model);
        }
        let choice = chunk.choices.first()?;
        if let Some(reason) = &choice.finish_reason {
            self.finish_reason = Some(reason.clone());
        }
        let mut delta = Map::new();
        if let Some(text) = choice.delta.content.as_ref().filter(|t| !t.is_empty()) {
            self.content.push_str(text);
            delta.insert("content".into(), Value::String(text.clone()));
        }
        if let Some(pieces) = &choice.delta.tool_calls {
            for piece in pieces {
                let call = self
                    .tool_calls
                    .entry(piece.index)
                    .or_insert_with(|| ToolCall::function("", "", ""));
                if let Some(id) = &piece.id {
                    call.id.clone_from(id);
                }
                if let Some(function) = &piece.function {
                    if let Some(name) = &function.name {
                        call.function.name.push_str(name);
                    }
                    if let Some(arguments) = &function.arguments {
                        call.function.arguments.push_str(arguments);
                    }
                }
            }
            delta.insert("tool_calls".into(), json!(pieces));
        }
        (!delta.is_empty()).then_some(Value::Object(delta))
    }
}

/// Forwards a stream to the client chunk by chunk, then records the call.
async fn forward(
    state: AppState,
    mut call: CallState,
    upstream: futures_util::stream::BoxStream<'static, Result<String, UpstreamError>>,
    include_usage: bool,
    tx: mpsc::Sender<Bytes>,
) {
    // Fused: the end may be seen by a `now_or_never` poll, then polled again.
    let mut upstream = upstream.fuse();
    let active = metrics::gauge!("llm_proxy_streams_active");
    active.increment(1);
    let mut assembly = Assembly::default();
    let mut error = None;
    // Events that arrived together (one read from the upstream) go to the
    // client as one write: the same bytes, fewer wake-ups and syscalls.
    let mut pending = BytesMut::new();
    while let Some(item) = upstream.next().await {
        let mut item = Some(item);
        while let Some(next) = item.take() {
            let data = match next {
                Ok(data) => data,
                Err(err) => {
                    error = Some(err.to_string());
                    break;
                }
            };
            if call.first_chunk_ms.is_none() {
                call.first_chunk_ms = Some(elapsed_ms(call.started));
            }
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
            if !usage_only || include_usage {
                pending.extend_from_slice(b"data: ");
                pending.extend_from_slice(data.as_bytes());
                pending.extend_from_slice(b"\n\n");
            }
            item = upstream.next().now_or_never().flatten();
        }
        // What arrived before a break still goes out, ahead of the error.
        if !pending.is_empty() && tx.send(pending.split().freeze()).await.is_err() {
            error.get_or_insert_with(|| "the client disconnected".into());
        }
        if error.is_some() {
            break;
        }
    }
    if error.is_none() && assembly.finish_reason.is_none() {
        error = Some("the upstream stream ended before the model finished".into());
    }
    if let Some(model) = &assembly.model {
        call.span.record("gen_ai.response.model", model.as_str());
    }
    let tool_calls: Vec<ToolCall> = assembly.tool_calls.into_values().collect();
    for tool_call in &tool_calls {
        state
            .hub
            .publish(&call.events, TraceKind::ToolCall, json!(tool_call))
            .await;
    }
    let usage = assembly.usage.unwrap_or_default();
    let response = json!({
        "content": assembly.content,
        "tool_calls": tool_calls,
        "usage": usage,
        "finish_reason": assembly.finish_reason,
    });
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
        usage,
        tool_calls,
        error,
    )
    .await;
    let _ = tx.send(last_frame).await;
    drop(tx);
    active.decrement(1);
}

/// Records the call and its tool calls (through the recorder's queue).
async fn finish(
    state: &AppState,
    call: CallState,
    response: Option<String>,
    usage: Usage,
    tool_calls: Vec<ToolCall>,
    error: Option<String>,
) {
    call.span
        .record("gen_ai.provider.name", call.provider.as_str());
    call.span
        .record("gen_ai.usage.input_tokens", usage.prompt_tokens);
    call.span
        .record("gen_ai.usage.output_tokens", usage.completion_tokens);
    let now = Utc::now().naive_utc();
    let tools = tool_calls
        .into_iter()
        .enumerate()
        .map(|(idx, tool)| ToolCallRow {
            id: new_id("tool"),
            call_id: call.id.clone(),
            idx: idx as i64,
            tool_call_id: tool.id,
            name: tool.function.name,
            arguments: tool.function.arguments,
            created_at: now,
        })
        .collect();
    let status = if error.is_some() { "error" } else { "ok" };
    metrics::counter!("llm_proxy_calls_total", "provider" => call.provider.clone(), "status" => status).increment(1);
    let row = LlmCall {
        id: call.id,
        user_id: call.events.user_id,
        agent_id: call.events.agent_id,
        conversation_id: call.events.conversation_id,
        provider: call.provider,
        model: call.model,
        stream: call.stream,
        request: call.raw_request,
        response,
        status: status.into(),
        error,
        latency_ms: elapsed_ms(call.started),
        first_chunk_ms: call.first_chunk_ms,
        input_tokens: i64::try_from(usage.prompt_tokens).unwrap_or(i64::MAX),
        output_tokens: i64::try_from(usage.completion_tokens).unwrap_or(i64::MAX),
        created_at: now,
        upstream_model: call.upstream_model,
        attempts: call.attempts,
    };
    state.recorder.record(Record::Call(row, tools)).await;
}

fn elapsed_ms(since: Instant) -> i64 {
    i64::try_from(since.elapsed().as_millis()).unwrap_or(i64::MAX)
}
