//! `POST /v1/chat/completions`: OpenAI-compatible, streaming and not. Every
//! call, whatever its outcome, leaves one `llm_calls` row.

use std::convert::Infallible;
use std::time::Instant;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use confab_kit::ApiError;
use confab_kit::ids::new_id;
use confab_protocol::openai::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatMessage, Choice, ChunkChoice,
    Delta, Usage,
};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::AppState;
use crate::auth::{CallIdentity, identify};
use crate::providers::builtin::{self, Answer, Builtin};
use crate::store::llm_calls::{self, LlmCall};

/// Chunks buffered towards a slow client; when full the generator waits, so
/// memory per stream stays bounded.
const STREAM_BUFFER: usize = 32;

pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let identity = identify(&req, &state.service_auth, &state.agent_keys)?;
    let request: ChatCompletionRequest = parse(&body)?;
    if request.messages.is_empty() {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "messages must not be empty",
        ));
    }
    if !Builtin::serves(&request.model) {
        return Err(ApiError::not_found(&format!("model '{}'", request.model)));
    }
    let answer = state.builtin.answer(&request);
    let call = CallRecord::new(identity, &request, body);
    if request.is_stream() {
        Ok(stream(state, request, answer, call))
    } else {
        tokio::time::sleep(state.builtin.first_chunk_delay()).await;
        let completion = ChatCompletion {
            id: call.id.clone(),
            object: "chat.completion".into(),
            created: Utc::now().timestamp(),
            model: request.model.clone(),
            choices: vec![Choice {
                index: 0,
                message: ChatMessage::new("assistant", answer.text()),
                finish_reason: Some("stop".into()),
            }],
            usage: Some(answer.usage),
        };
        let response = serde_json::to_string(&completion).map_err(ApiError::internal)?;
        call.finish(&state, Some(response.clone()), answer.usage, None)
            .await;
        Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(response))
    }
}

fn parse(body: &[u8]) -> Result<ChatCompletionRequest, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("malformed_json", format!("malformed JSON: {e}")))?;
    serde_json::from_value(value)
        .map_err(|e| ApiError::unprocessable("invalid_body", format!("invalid request: {e}")))
}

/// Streams the answer as `chat.completion.chunk` events ending in `[DONE]`.
/// The generator runs in its own task and records the call when it ends,
/// also when the client went away (then with the partial output).
fn stream(
    state: web::Data<AppState>,
    request: ChatCompletionRequest,
    answer: Answer,
    mut call: CallRecord,
) -> HttpResponse {
    let (tx, rx) = mpsc::channel::<Bytes>(STREAM_BUFFER);
    let include_usage = request
        .stream_options
        .as_ref()
        .is_some_and(|o| o.include_usage);
    let model = request.model.clone();
    let call_id = call.id.clone();
    tokio::spawn(async move {
        let active = metrics::gauge!("llm_streams_active");
        active.increment(1);
        let chunk = |delta: Delta, finish: Option<&str>, usage: Option<Usage>| {
            let chunk = ChatCompletionChunk {
                id: call_id.clone(),
                object: "chat.completion.chunk".into(),
                created: Utc::now().timestamp(),
                model: model.clone(),
                choices: if usage.is_some() {
                    Vec::new()
                } else {
                    vec![ChunkChoice {
                        index: 0,
                        delta,
                        finish_reason: finish.map(str::to_owned),
                    }]
                },
                usage,
            };
            sse(&chunk)
        };
        tokio::time::sleep(state.builtin.first_chunk_delay()).await;
        call.first_chunk();
        let role = Delta {
            role: Some("assistant".into()),
            content: Some(String::new()),
            ..Delta::default()
        };
        let mut produced = String::new();
        let mut delivered = tx.send(chunk(role, None, None)).await.is_ok();
        for token in &answer.tokens {
            if !delivered {
                break;
            }
            tokio::time::sleep(state.builtin.chunk_delay()).await;
            let delta = Delta {
                content: Some(token.clone()),
                ..Delta::default()
            };
            delivered = tx.send(chunk(delta, None, None)).await.is_ok();
            if delivered {
                produced.push_str(token);
            }
        }
        if delivered {
            delivered = tx
                .send(chunk(Delta::default(), Some("stop"), None))
                .await
                .is_ok();
        }
        if delivered && include_usage {
            delivered = tx
                .send(chunk(Delta::default(), None, Some(answer.usage)))
                .await
                .is_ok();
        }
        if delivered {
            delivered = tx
                .send(Bytes::from_static(b"data: [DONE]\n\n"))
                .await
                .is_ok();
        }
        let response = serde_json::json!({"role": "assistant", "content": produced}).to_string();
        let error =
            (!delivered).then(|| "client disconnected before the end of the stream".to_owned());
        call.finish(&state, Some(response), answer.usage, error)
            .await;
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .streaming(ReceiverStream::new(rx).map(Ok::<_, Infallible>))
}

fn sse(chunk: &ChatCompletionChunk) -> Bytes {
    let json = serde_json::to_string(chunk).unwrap_or_default();
    Bytes::from(format!("data: {json}\n\n"))
}

/// The `llm_calls` row of one call, filled in as the call goes.
struct CallRecord {
    id: String,
    identity: CallIdentity,
    model: String,
    stream: bool,
    request: Bytes,
    started: Instant,
    first_chunk_ms: Option<i64>,
}

impl CallRecord {
    fn new(identity: CallIdentity, request: &ChatCompletionRequest, body: Bytes) -> Self {
        Self {
            id: new_id("call"),
            identity,
            model: request.model.clone(),
            stream: request.is_stream(),
            request: body,
            started: Instant::now(),
            first_chunk_ms: None,
        }
    }

    fn first_chunk(&mut self) {
        self.first_chunk_ms = Some(elapsed_ms(self.started));
    }

    async fn finish(
        self,
        state: &AppState,
        response: Option<String>,
        usage: Usage,
        error: Option<String>,
    ) {
        let row = LlmCall {
            id: self.id,
            user_id: self.identity.user_id,
            agent_id: self.identity.agent_id,
            conversation_id: self.identity.conversation_id,
            provider: builtin::PROVIDER.into(),
            model: self.model,
            stream: self.stream,
            request: String::from_utf8_lossy(&self.request).into_owned(),
            response,
            status: if error.is_some() { "error" } else { "ok" }.into(),
            error,
            latency_ms: elapsed_ms(self.started),
            first_chunk_ms: self.first_chunk_ms.or(Some(elapsed_ms(self.started))),
            input_tokens: usage.prompt_tokens as i64,
            output_tokens: usage.completion_tokens as i64,
            created_at: Utc::now().naive_utc(),
        };
        if let Err(err) = llm_calls::insert(&state.db, &row).await {
            tracing::error!(error = %err, call_id = %row.id, "recording the LLM call failed");
        }
    }
}

fn elapsed_ms(since: Instant) -> i64 {
    i64::try_from(since.elapsed().as_millis()).unwrap_or(i64::MAX)
}
