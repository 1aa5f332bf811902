//! Streaming A2A v1.0 calls to an agent: `SendStreamingMessage` over
//! JSON-RPC, the reply read as SSE with eventsource-stream.

use std::time::Duration;

use confab_protocol::a2a::{
    JsonRpcRequest, JsonRpcResponse, METHOD_SEND_STREAMING_MESSAGE, METHOD_SUBSCRIBE_TO_TASK,
    PROTOCOL_VERSION, SendMessageRequest, StreamResponse, TaskState, VERSION_HEADER,
};
use confab_protocol::chat::TokenUsage;
use eventsource_stream::Eventsource;
use futures_util::{StreamExt, stream};
use serde_json::Value;

/// An agent's stream results, as a turn reads them.
pub type AgentStream = futures_util::stream::BoxStream<'static, Result<AgentEvent, A2aError>>;

/// What an agent said, reduced to what a chat turn needs.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// The agent's task id, known from the first result.
    Task {
        task_id: String,
    },
    /// The whole text of the task's answer so far (a re-subscription's
    /// snapshot), to fill in what a dropped stream missed.
    Snapshot(String),
    Text(String),
    Data(Value),
    /// A status change; `text` is the agent's status message, if any.
    Status {
        state: TaskState,
        text: Option<String>,
        usage: Option<TokenUsage>,
    },
}

impl A2aError {
    /// Worth another attempt: the agent could not be reached, was
    /// overloaded (429) or failed (5xx) before saying anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            A2aError::Connect(_) => true,
            A2aError::Status(status) => *status == 429 || *status >= 500,
            A2aError::Rpc { .. } | A2aError::Stream(_) => false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum A2aError {
    #[error("agent unreachable: {0}")]
    Connect(String),
    #[error("agent answered HTTP {0}")]
    Status(u16),
    #[error("agent error {code}: {message}")]
    Rpc { code: i64, message: String },
    #[error("agent stream broke: {0}")]
    Stream(String),
}

#[derive(Clone)]
pub struct A2aClient {
    http: reqwest::Client,
}

impl A2aClient {
    pub fn new(connect_timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .build()?;
        Ok(Self { http })
    }

    /// Sends `request` with `SendStreamingMessage` and streams the agent's
    /// results. Fails before the first event on connection errors, HTTP
    /// errors and JSON-RPC errors.
    pub async fn send_streaming(
        &self,
        url: &str,
        request: SendMessageRequest,
        request_id: Option<&str>,
    ) -> Result<AgentStream, A2aError> {
        let params = serde_json::to_value(request).map_err(|e| A2aError::Stream(e.to_string()))?;
        self.stream_call(url, METHOD_SEND_STREAMING_MESSAGE, params, request_id)
            .await
    }

    /// Picks a task's stream up again with `SubscribeToTask`: the task's
    /// snapshot first ([`AgentEvent::Snapshot`]), then its live results.
    pub async fn subscribe(
        &self,
        url: &str,
        task_id: &str,
        request_id: Option<&str>,
    ) -> Result<AgentStream, A2aError> {
        let params = serde_json::json!({"id": task_id});
        self.stream_call(url, METHOD_SUBSCRIBE_TO_TASK, params, request_id)
            .await
    }

    async fn stream_call(
        &self,
        url: &str,
        method: &str,
        params: Value,
        request_id: Option<&str>,
    ) -> Result<AgentStream, A2aError> {
        let envelope = JsonRpcRequest::new(confab_kit::ids::new_id("rpc"), method, params);
        let mut call = self
            .http
            .post(url)
            .header(VERSION_HEADER, PROTOCOL_VERSION)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(&envelope);
        if let Some(id) = request_id {
            call = call.header(confab_protocol::auth::REQUEST_ID_HEADER, id);
        }
        let response = call
            .send()
            .await
            .map_err(|e| A2aError::Connect(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(A2aError::Status(status.as_u16()));
        }
        let is_sse = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            // A JSON-RPC error comes back as a plain JSON body.
            let body: JsonRpcResponse<Value> = response
                .json()
                .await
                .map_err(|e| A2aError::Stream(format!("unreadable agent answer: {e}")))?;
            return Err(match body.error {
                Some(err) => A2aError::Rpc {
                    code: err.code,
                    message: err.message,
                },
                None => A2aError::Stream("agent answered JSON instead of a stream".into()),
            });
        }
        Ok(Box::pin(
            response
                .bytes_stream()
                .eventsource()
                .flat_map(|event| stream::iter(decode(event))),
        ))
    }
}

fn decode<E: std::fmt::Display>(
    event: Result<eventsource_stream::Event, E>,
) -> Vec<Result<AgentEvent, A2aError>> {
    let event = match event {
        Ok(event) => event,
        Err(err) => return vec![Err(A2aError::Stream(err.to_string()))],
    };
    let envelope: JsonRpcResponse<StreamResponse> = match serde_json::from_str(&event.data) {
        Ok(envelope) => envelope,
        Err(err) => {
            return vec![Err(A2aError::Stream(format!(
                "unreadable stream result: {err}"
            )))];
        }
    };
    if let Some(err) = envelope.error {
        return vec![Err(A2aError::Rpc {
            code: err.code,
            message: err.message,
        })];
    }
    match envelope.result {
        None => Vec::new(),
        Some(StreamResponse::Task(task)) => vec![
            Ok(AgentEvent::Task { task_id: task.id }),
            Ok(AgentEvent::Status {
                state: task.status.state,
                text: task
                    .status
                    .message
                    .map(|m| m.text())
                    .filter(|t| !t.is_empty()),
                usage: None,
            }),
        ],
        Some(StreamResponse::Message(message)) => parts(message.parts),
        Some(StreamResponse::ArtifactUpdate(update)) => parts(update.artifact.parts),
        Some(StreamResponse::StatusUpdate(update)) => {
            let usage = update
                .metadata
                .as_ref()
                .and_then(|m| m.get("usage"))
                .and_then(|u| serde_json::from_value::<TokenUsage>(u.clone()).ok());
            vec![
                Ok(AgentEvent::Task {
                    task_id: update.task_id,
                }),
                Ok(AgentEvent::Status {
                    state: update.status.state,
                    text: update
                        .status
                        .message
                        .map(|m| m.text())
                        .filter(|t| !t.is_empty()),
                    usage,
                }),
            ]
        }
    }
}

fn parts(parts: Vec<confab_protocol::a2a::Part>) -> Vec<Result<AgentEvent, A2aError>> {
    parts
        .into_iter()
        .filter_map(|part| match (part.text, part.data) {
            (Some(text), _) => Some(Ok(AgentEvent::Text(text))),
            (None, Some(data)) => Some(Ok(AgentEvent::Data(data))),
            _ => None,
        })
        .collect()
}
