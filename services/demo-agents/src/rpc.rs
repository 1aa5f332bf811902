//! The A2A JSON-RPC endpoint of an agent (`POST /`).

use std::convert::Infallible;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ids::new_id;
use confab_protocol::a2a::{
    JsonRpcError, JsonRpcRequest, JsonRpcResponse, METHOD_CANCEL_TASK, METHOD_GET_TASK,
    METHOD_SEND_STREAMING_MESSAGE, METHOD_SUBSCRIBE_TO_TASK, SendMessageRequest, StreamResponse,
    Task, TaskState, TaskStatus, error_code,
};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::AgentState;
use crate::agent::{ConfabContext, TaskRun};
use crate::tasks::CancelError;

/// Largest JSON-RPC request read; a message to an agent is text, far below.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

pub async fn handle(
    req: HttpRequest,
    agent: web::Data<AgentState>,
    mut payload: web::Payload,
) -> HttpResponse {
    // Read up to the limit ourselves, so an oversized request still gets a
    // JSON-RPC error (not an HTTP one) and is not read to its end.
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            return rpc_error(
                Value::Null,
                error_code::INVALID_REQUEST,
                "the request body could not be read".into(),
            );
        };
        if body.len() + chunk.len() > MAX_REQUEST_BYTES {
            return rpc_error(
                Value::Null,
                error_code::INVALID_REQUEST,
                format!("the request is larger than {MAX_REQUEST_BYTES} bytes"),
            );
        }
        body.extend_from_slice(&chunk);
    }
    let value: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(err) => {
            return rpc_error(
                Value::Null,
                error_code::PARSE_ERROR,
                format!("invalid JSON: {err}"),
            );
        }
    };
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    let request: JsonRpcRequest<Value> = match serde_json::from_value(value) {
        Ok(request) => request,
        Err(err) => {
            return rpc_error(
                id,
                error_code::INVALID_REQUEST,
                format!("not a JSON-RPC 2.0 request: {err}"),
            );
        }
    };
    match request.method.as_str() {
        METHOD_SEND_STREAMING_MESSAGE => {
            match serde_json::from_value::<SendMessageRequest>(request.params) {
                Ok(params) => send_streaming_message(&req, agent, request.id, params),
                Err(err) => rpc_error(
                    request.id,
                    error_code::INVALID_PARAMS,
                    format!("invalid params: {err}"),
                ),
            }
        }
        METHOD_SUBSCRIBE_TO_TASK => subscribe_to_task(&agent, request.id, &request.params),
        METHOD_GET_TASK | METHOD_CANCEL_TASK => {
            task_method(&agent, &request.method, request.id, &request.params)
        }
        other => rpc_error(
            request.id,
            error_code::METHOD_NOT_FOUND,
            format!("method '{other}' not found"),
        ),
    }
}

/// `GetTask` and `CancelTask`: params `{"id": task id}`.
fn task_method(agent: &AgentState, method: &str, id: Value, params: &Value) -> HttpResponse {
    let Some(task_id) = params.get("id").and_then(Value::as_str) else {
        return rpc_error(
            id,
            error_code::INVALID_PARAMS,
            "params.id (the task id) is required".into(),
        );
    };
    let result = if method == METHOD_GET_TASK {
        agent.tasks.get(task_id).ok_or(CancelError::NotFound)
    } else {
        agent.tasks.cancel(task_id)
    };
    match result {
        Ok(task) => HttpResponse::Ok().json(JsonRpcResponse::success(id, task)),
        Err(CancelError::NotFound) => rpc_error(
            id,
            error_code::TASK_NOT_FOUND,
            format!("task {task_id} not found"),
        ),
        Err(CancelError::NotCancelable) => rpc_error(
            id,
            error_code::TASK_NOT_CANCELABLE,
            format!("task {task_id} has already ended"),
        ),
    }
}

fn send_streaming_message(
    req: &HttpRequest,
    agent: web::Data<AgentState>,
    id: Value,
    params: SendMessageRequest,
) -> HttpResponse {
    let context = ConfabContext::from_metadata(params.metadata.as_ref());
    let task_id = new_id("task");
    let context_id = params
        .message
        .context_id
        .clone()
        .unwrap_or_else(|| new_id("ctx"));
    let cancel = agent.tasks.insert(Task {
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
    });
    let run = TaskRun {
        kind: agent.kind,
        tasks: agent.tasks.clone(),
        cancel,
        task_id,
        context_id,
        message: params.message,
        context,
        traceparent: req
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    // Subscribed before the run starts, so the stream misses nothing.
    let Some((_, live)) = agent.tasks.subscribe(&run.task_id) else {
        return rpc_error(id, error_code::INTERNAL_ERROR, "the task vanished".into());
    };
    tokio::spawn(run.run(agent.llm.clone()));
    sse(id, None, live)
}

/// `SubscribeToTask` `{"id"}`: the task's snapshot first, then its results
/// until it ends.
fn subscribe_to_task(agent: &AgentState, id: Value, params: &Value) -> HttpResponse {
    let Some(task_id) = params.get("id").and_then(Value::as_str) else {
        return rpc_error(
            id,
            error_code::INVALID_PARAMS,
            "params.id (the task id) is required".into(),
        );
    };
    match agent.tasks.subscribe(task_id) {
        Some((snapshot, live)) => sse(id, Some(snapshot), live),
        None => rpc_error(
            id,
            error_code::TASK_NOT_FOUND,
            format!("task {task_id} not found"),
        ),
    }
}

/// A task's stream results as SSE, ending right after the one that ends the
/// task (or when this subscriber fell too far behind: it may re-subscribe).
fn sse(
    id: Value,
    snapshot: Option<Task>,
    live: broadcast::Receiver<StreamResponse>,
) -> HttpResponse {
    let ended = snapshot
        .as_ref()
        .is_some_and(|t| t.status.state.is_terminal());
    let first = futures_util::stream::iter(snapshot.map(StreamResponse::Task));
    let rest = futures_util::stream::unfold((live, ended), |(mut live, ended)| async move {
        if ended {
            return None;
        }
        let result = live.recv().await.ok()?;
        let ends =
            matches!(&result, StreamResponse::StatusUpdate(u) if u.status.state.is_terminal());
        Some((result, (live, ends)))
    });
    let frames = first.chain(rest).map(move |result| {
        let envelope = JsonRpcResponse::success(id.clone(), result);
        let json = serde_json::to_string(&envelope).unwrap_or_default();
        Ok::<_, Infallible>(Bytes::from(format!("data: {json}\n\n")))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .streaming(frames)
}

/// JSON-RPC errors travel in a 200 response, as the binding specifies.
fn rpc_error(id: Value, code: i64, message: String) -> HttpResponse {
    HttpResponse::Ok().json(JsonRpcResponse::<Value>::failure(
        id,
        JsonRpcError {
            code,
            message,
            data: None,
        },
    ))
}
