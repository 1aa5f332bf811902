//! The A2A JSON-RPC endpoint of an agent (`POST /`), in both protocol
//! versions.
//!
//! The version a request speaks is the one its `A2A-Version` header (or
//! query parameter) names; none means 0.3, as the specification requires.
//! A method must be named as that version names it (`SendStreamingMessage`
//! in 1.0, `message/stream` in 0.3); params are read into the internal model
//! and results written back in the same version, so everything past this
//! file is version-blind.
//!
//! Every call must be authenticated ([`crate::auth`]): one that is not gets
//! HTTP 401 with a JSON-RPC error before its body is even read. A new task
//! past the agent's limit of running tasks gets HTTP 429 with `Retry-After`
//! and a JSON-RPC error, and is not started.

use std::convert::Infallible;
use std::sync::Arc;
use tracing::Instrument;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ids::new_id;
use confab_protocol::a2a::{
    JsonRpcError, JsonRpcRequest, JsonRpcResponse, Method, ProtocolVersion, SendMessageRequest,
    SendMessageResponse, StreamResponse, Task, TaskState, TaskStatus, VERSION_HEADER, error_code,
};
use futures_util::StreamExt;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::broadcast;

use crate::AgentState;
use crate::agent::{ConfabContext, TaskRun};
use crate::auth::{Authenticated, Refusal};
use crate::tasks::{Busy, CancelError};

/// Largest JSON-RPC request read; a message to an agent is text, far below.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// The versions an agent serves, as the error for any other names them.
const SUPPORTED_VERSIONS: &str = "1.0, 0.3";

/// Seconds a caller refused for a busy agent is asked to wait: a demo
/// agent's task takes a few seconds, so a slot is soon free; chat-service's
/// own first retry waits as long.
const BUSY_RETRY_AFTER_SECS: u64 = 1;

pub async fn handle(
    req: HttpRequest,
    agent: web::Data<AgentState>,
    payload: web::Payload,
) -> HttpResponse {
    let caller = match agent.credentials.check(&req) {
        Ok(caller) => caller,
        Err(refusal) => return unauthenticated(agent.kind.name(), refusal),
    };
    let request = match read_request(payload).await {
        Ok(request) => request,
        Err((id, error)) => return rpc_error(id, error),
    };
    let id = request.id;
    let version = match requested_version(&req) {
        Ok(version) => version,
        Err(asked) => {
            return rpc_error(
                id,
                JsonRpcError::a2a(
                    error_code::VERSION_NOT_SUPPORTED,
                    format!(
                        "A2A version '{asked}' is not supported; this agent speaks {SUPPORTED_VERSIONS}"
                    ),
                    &[
                        ("requestedVersion", &asked),
                        ("supportedVersions", SUPPORTED_VERSIONS),
                    ],
                ),
            );
        }
    };
    let method = match Method::parse(&request.method) {
        Some((method, named_in)) if named_in == version => method,
        Some((_, named_in)) => {
            return rpc_error(
                id,
                JsonRpcError::new(
                    error_code::METHOD_NOT_FOUND,
                    format!(
                        "'{}' is an A2A {named_in} method, but the request speaks A2A {version} \
                         (send the header {VERSION_HEADER}: {named_in})",
                        request.method
                    ),
                ),
            );
        }
        None => {
            return rpc_error(
                id,
                JsonRpcError::new(
                    error_code::METHOD_NOT_FOUND,
                    format!("method '{}' not found", request.method),
                ),
            );
        }
    };
    match method {
        Method::SendMessage | Method::SendStreamingMessage => {
            let params = match version.decode_send_params(request.params) {
                Ok(params) => params,
                Err(err) => return invalid_params(id, format!("invalid params: {err}")),
            };
            let blocking = params
                .configuration
                .as_ref()
                .and_then(|c| c.blocking)
                .unwrap_or(true);
            let (task_id, live) = match start_task(&req, &agent, caller, params) {
                Ok(started) => started,
                Err(StartError::Busy(busy)) => return agent_busy(id, busy),
                Err(StartError::Vanished) => {
                    return rpc_error(
                        id,
                        JsonRpcError::new(error_code::INTERNAL_ERROR, "the task vanished"),
                    );
                }
            };
            match method {
                Method::SendStreamingMessage => sse(version, id, None, live),
                _ if blocking => send_message(&agent, version, id, &task_id, Some(live)).await,
                _ => send_message(&agent, version, id, &task_id, None).await,
            }
        }
        Method::GetTask | Method::CancelTask | Method::SubscribeToTask => {
            let Some(task_id) = request.params.get("id").and_then(Value::as_str) else {
                return invalid_params(id, "params.id (the task id) is required".into());
            };
            task_method(&agent, version, method, id, task_id)
        }
    }
}

/// Reads the body up to the limit (so an oversized request gets a JSON-RPC
/// error, not an HTTP one, and is not read to its end) and parses the
/// envelope. An error comes with the id to answer it under, if one was read.
async fn read_request(
    mut payload: web::Payload,
) -> Result<JsonRpcRequest<Value>, (Value, JsonRpcError)> {
    let fail = |code, message: String| (Value::Null, JsonRpcError::new(code, message));
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            fail(
                error_code::INVALID_REQUEST,
                "the request body could not be read".into(),
            )
        })?;
        if body.len() + chunk.len() > MAX_REQUEST_BYTES {
            return Err(fail(
                error_code::INVALID_REQUEST,
                format!("the request is larger than {MAX_REQUEST_BYTES} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let value: Value = serde_json::from_slice(&body)
        .map_err(|err| fail(error_code::PARSE_ERROR, format!("invalid JSON: {err}")))?;
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    serde_json::from_value(value).map_err(|err| {
        (
            id,
            JsonRpcError::new(
                error_code::INVALID_REQUEST,
                format!("not a JSON-RPC 2.0 request: {err}"),
            ),
        )
    })
}

/// The version the request asks for: the `A2A-Version` header, else the
/// query parameter of that name, else 0.3. `Err` carries a version this
/// agent does not speak.
fn requested_version(req: &HttpRequest) -> Result<ProtocolVersion, String> {
    let header = req
        .headers()
        .get(VERSION_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let asked = header.or_else(|| {
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get(VERSION_HEADER).cloned())
    });
    match asked {
        None => Ok(ProtocolVersion::V0_3),
        Some(asked) => ProtocolVersion::parse(&asked).ok_or(asked),
    }
}

/// Why no task was started.
enum StartError {
    Busy(Busy),
    /// Forgotten between being stored and being subscribed to (cannot
    /// happen: a running task is never forgotten).
    Vanished,
}

/// Creates the task and starts its run; returns its id and a subscription
/// taken before the run starts, so the caller misses none of its results.
fn start_task(
    req: &HttpRequest,
    agent: &AgentState,
    caller: Authenticated,
    params: SendMessageRequest,
) -> Result<(String, broadcast::Receiver<Arc<StreamResponse>>), StartError> {
    let context = ConfabContext::from_metadata(caller, params.metadata.as_ref());
    let task_id = new_id("task");
    let context_id = params
        .message
        .context_id
        .clone()
        .unwrap_or_else(|| new_id("ctx"));
    let cancel = agent
        .tasks
        .try_insert(Task {
            id: task_id.clone(),
            context_id: context_id.clone(),
            status: TaskStatus {
                state: TaskState::Submitted,
                message: None,
                timestamp: None,
            },
            artifacts: Vec::new(),
            history: vec![params.message.clone()],
            metadata: None,
        })
        .map_err(StartError::Busy)?;
    let Some((_, live)) = agent.tasks.subscribe(&task_id) else {
        return Err(StartError::Vanished);
    };
    // The task's span, a child of the request that started it (the task
    // outlives it): the task's LLM calls are its children, as the GenAI
    // conventions' agent invocation.
    let span = tracing::info_span!(
        "invoke_agent",
        otel.name = %format_args!("invoke_agent {}", agent.kind.name()),
        gen_ai.operation.name = "invoke_agent",
        gen_ai.agent.name = agent.kind.name(),
        gen_ai.conversation.id = context.conversation_id.as_deref().unwrap_or(""),
        confab.task_id = %task_id,
    );
    let run = TaskRun {
        kind: agent.kind,
        tasks: agent.tasks.clone(),
        cancel,
        task_id: task_id.clone(),
        context_id,
        message: params.message,
        context,
        traceparent: confab_kit::telemetry::traceparent_of(&span)
            .or_else(|| confab_kit::server::traceparent(req)),
    };
    tokio::spawn(run.run(agent.llm.clone()).instrument(span));
    Ok((task_id, live))
}

/// `SendMessage`: waits for the task to end (when given its results to
/// watch, which a blocking call is), then answers with the task as it is.
async fn send_message(
    agent: &AgentState,
    version: ProtocolVersion,
    id: Value,
    task_id: &str,
    live: Option<broadcast::Receiver<Arc<StreamResponse>>>,
) -> HttpResponse {
    if let Some(mut live) = live {
        loop {
            match live.recv().await {
                Ok(result) if ends_stream(&result) => break,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    }
    match agent.tasks.get(task_id) {
        Some(task) => success(
            id,
            version.encode_send_result(SendMessageResponse::Task(task)),
        ),
        None => rpc_error(
            id,
            JsonRpcError::new(
                error_code::INTERNAL_ERROR,
                "the task was forgotten before it ended",
            ),
        ),
    }
}

/// `GetTask`, `CancelTask` and `SubscribeToTask` (params `{"id": task id}`).
fn task_method(
    agent: &AgentState,
    version: ProtocolVersion,
    method: Method,
    id: Value,
    task_id: &str,
) -> HttpResponse {
    let result = match method {
        Method::SubscribeToTask => match agent.tasks.subscribe(task_id) {
            // The specification's answer for a task that has ended: there
            // is nothing to subscribe to; `GetTask` has its final state.
            Some((snapshot, _)) if snapshot.status.state.is_terminal() => {
                return rpc_error(
                    id,
                    JsonRpcError::a2a(
                        error_code::UNSUPPORTED_OPERATION,
                        format!("task {task_id} has ended; read it with GetTask"),
                        &[("taskId", task_id)],
                    ),
                );
            }
            Some((snapshot, live)) => return sse(version, id, Some(snapshot), live),
            None => Err(CancelError::NotFound),
        },
        Method::CancelTask => agent.tasks.cancel(task_id),
        _ => agent.tasks.get(task_id).ok_or(CancelError::NotFound),
    };
    match result {
        Ok(task) => success(id, version.encode_task(task)),
        Err(CancelError::NotFound) => rpc_error(
            id,
            JsonRpcError::a2a(
                error_code::TASK_NOT_FOUND,
                format!("task {task_id} not found"),
                &[("taskId", task_id)],
            ),
        ),
        Err(CancelError::NotCancelable) => rpc_error(
            id,
            JsonRpcError::a2a(
                error_code::TASK_NOT_CANCELABLE,
                format!("task {task_id} has already ended"),
                &[("taskId", task_id)],
            ),
        ),
    }
}

/// A task's stream results as SSE, written in `version`: the snapshot first
/// when re-subscribing, then live results, ending right after the one that
/// ends the stream (or when this subscriber fell too far behind: it may
/// re-subscribe).
fn sse(
    version: ProtocolVersion,
    id: Value,
    snapshot: Option<Task>,
    live: broadcast::Receiver<Arc<StreamResponse>>,
) -> HttpResponse {
    let ended = snapshot
        .as_ref()
        .is_some_and(|t| t.status.state.ends_stream());
    let first =
        futures_util::stream::iter(snapshot.map(|task| Arc::new(StreamResponse::Task(task))));
    let rest = futures_util::stream::unfold((live, ended), |(mut live, ended)| async move {
        if ended {
            return None;
        }
        let result = live.recv().await.ok()?;
        let ends = ends_stream(&result);
        Some((result, (live, ends)))
    });
    let frames = first.chain(rest).map(move |result| {
        let encoded = version
            .encode_stream_result(&result)
            .and_then(RawValue::from_string);
        let envelope = match encoded {
            Ok(result) => JsonRpcResponse::success(id.clone(), result),
            Err(err) => JsonRpcResponse::failure(
                id.clone(),
                JsonRpcError::new(error_code::INTERNAL_ERROR, err.to_string()),
            ),
        };
        let mut frame = b"data: ".to_vec();
        // Writing a response of strings and JSON into memory cannot fail.
        let _ = serde_json::to_writer(&mut frame, &envelope);
        frame.extend_from_slice(b"\n\n");
        Ok::<_, Infallible>(Bytes::from(frame))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .streaming(frames)
}

/// The result after which a stream ends.
fn ends_stream(result: &StreamResponse) -> bool {
    matches!(result, StreamResponse::StatusUpdate(u) if u.status.state.ends_stream())
}

fn success(id: Value, result: serde_json::Result<Value>) -> HttpResponse {
    match result {
        Ok(result) => HttpResponse::Ok().json(JsonRpcResponse::success(id, result)),
        Err(err) => rpc_error(
            id,
            JsonRpcError::new(error_code::INTERNAL_ERROR, err.to_string()),
        ),
    }
}

fn invalid_params(id: Value, message: String) -> HttpResponse {
    rpc_error(id, JsonRpcError::new(error_code::INVALID_PARAMS, message))
}

/// JSON-RPC errors travel in a 200 response, as the binding specifies.
fn rpc_error(id: Value, error: JsonRpcError) -> HttpResponse {
    HttpResponse::Ok().json(JsonRpcResponse::<Value>::failure(id, error))
}

/// HTTP 401, where A2A puts authentication (it has no JSON-RPC code for
/// it), with the challenge RFC 6750 asks for and a JSON-RPC error saying
/// what to send. The id is null: the body was not read.
fn unauthenticated(agent: &str, refusal: Refusal) -> HttpResponse {
    let (challenge, message) = match refusal {
        Refusal::Missing => (
            format!(r#"Bearer realm="{agent}""#),
            "authentication required: send Authorization: Bearer with the service token \
             or this agent's inbound key (see securitySchemes in the agent card)",
        ),
        Refusal::Invalid => (
            format!(r#"Bearer realm="{agent}", error="invalid_token""#),
            "the bearer token is not accepted by this agent",
        ),
    };
    HttpResponse::Unauthorized()
        .insert_header(("www-authenticate", challenge))
        .json(JsonRpcResponse::<Value>::failure(
            Value::Null,
            JsonRpcError::new(error_code::UNAUTHENTICATED, message),
        ))
}

/// HTTP 429 with `Retry-After`, which chat-service retries like any 429
/// before the first event, and the JSON-RPC error that says why.
fn agent_busy(id: Value, busy: Busy) -> HttpResponse {
    let Busy { running, limit } = busy;
    HttpResponse::TooManyRequests()
        .insert_header(("retry-after", BUSY_RETRY_AFTER_SECS.to_string()))
        .json(JsonRpcResponse::<Value>::failure(
            id,
            JsonRpcError::new(
                error_code::INTERNAL_ERROR,
                format!(
                    "the agent is busy: {running} tasks are running (limit {limit}); \
                     retry later"
                ),
            ),
        ))
}
