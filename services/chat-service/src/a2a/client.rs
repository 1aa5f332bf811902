//! A2A calls to an agent over JSON-RPC, in the protocol version the agent's
//! card offers (v1.0 or v0.3): streaming sends and re-subscriptions read as
//! SSE with eventsource-stream, and `CancelTask`. Every call presents the
//! agent's credential as `Authorization: Bearer`.

use std::time::Duration;

use bytes::Bytes;
use confab_kit::http_client::{PerThreadClient, SERVICE_POOL_IDLE};
use confab_protocol::a2a::confab::UsageMetadata;
use confab_protocol::a2a::{
    JsonRpcRequest, JsonRpcResponse, Method, ProtocolVersion, SendMessageRequest, StreamResponse,
    Task, TaskState, VERSION_HEADER, error_code,
};
use confab_protocol::chat::MessageUsage;
use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt, stream};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tracing::Instrument;

/// An agent's stream results, as a turn reads them.
pub type AgentStream = futures_util::stream::BoxStream<'static, Result<AgentEvent, A2aError>>;

/// What an agent said, reduced to what a chat turn needs.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// The agent's task id, known from the first result.
    Task {
        task_id: String,
    },
    /// Everything the task produced so far (a re-subscription's snapshot):
    /// its text and its data parts, to fill in what a dropped stream missed.
    Snapshot {
        text: String,
        data: Vec<Value>,
    },
    Text(String),
    Data(Value),
    /// A status change; `text` is the agent's status message, if any.
    Status {
        state: TaskState,
        text: Option<String>,
        usage: Option<MessageUsage>,
    },
}

impl A2aError {
    fn from_status(status: reqwest::StatusCode) -> Self {
        match status {
            reqwest::StatusCode::UNAUTHORIZED => A2aError::Unauthorized,
            status => A2aError::Status(status.as_u16()),
        }
    }

    /// Worth another attempt: the agent could not be reached, was
    /// overloaded (429) or failed (5xx) before saying anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            A2aError::Connect(_) | A2aError::Card(_) => true,
            A2aError::Status(status) => *status == 429 || *status >= 500,
            A2aError::Unauthorized
            | A2aError::Rpc { .. }
            | A2aError::Stream(_)
            | A2aError::Canceled
            | A2aError::Unusable(_) => false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum A2aError {
    #[error("agent unreachable: {0}")]
    Connect(#[source] reqwest::Error),
    /// The agent's card, which says how to call it, could not be had.
    #[error("agent unreachable: {0}")]
    Card(#[from] CardError),
    #[error("agent answered HTTP {0}")]
    Status(u16),
    /// The agent refused chat-service's credential: a configuration error,
    /// not worth a retry.
    #[error(
        "the agent refused chat-service's credential (HTTP 401): check the agent's `key` \
         in chat-service's settings, or the service token both sides share"
    )]
    Unauthorized,
    #[error("agent error {code}: {message}")]
    Rpc { code: i64, message: String },
    #[error("agent stream broke: {0}")]
    Stream(String),
    /// The turn was canceled before the agent answered.
    #[error("canceled before the agent answered")]
    Canceled,
    /// Nothing to retry: the agent is unknown or speaks no version we do.
    #[error("{0}")]
    Unusable(String),
}

/// Why an agent's card could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("no agent {0}")]
    NotRegistered(String),
    #[error("fetching {url}: {source}")]
    Fetch {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("reading the card at {url}: {source}")]
    Read {
        url: String,
        #[source]
        source: reqwest::Error,
    },
}

/// A turn's calls go over connections of its own worker
/// ([`PerThreadClient`]): the agent's stream is read where the turn runs.
/// An agent that speaks HTTP/2 ([`Endpoint::http2`]) is called over one
/// connection per worker that carries every turn's stream at once; any
/// other over HTTP/1.1, a connection per call in flight.
#[derive(Clone)]
pub struct A2aClient {
    http1: PerThreadClient,
    http2: PerThreadClient,
}

impl A2aClient {
    /// `read_timeout` bounds each wait for the agent's next bytes: a stream
    /// silent for longer counts as dropped (and is re-subscribed to).
    pub fn new(connect_timeout: Duration, read_timeout: Duration) -> anyhow::Result<Self> {
        let builder = move || {
            reqwest::Client::builder()
                .connect_timeout(connect_timeout)
                .read_timeout(read_timeout)
                .pool_idle_timeout(SERVICE_POOL_IDLE)
        };
        Ok(Self {
            http1: PerThreadClient::new(move || builder().http1_only())?,
            http2: PerThreadClient::new(move || builder().http2_prior_knowledge())?,
        })
    }

    /// Sends `request` with `SendStreamingMessage` (`message/stream` in
    /// v0.3) and streams the agent's results. Fails before the first event on
    /// connection errors, HTTP errors and JSON-RPC errors.
    pub async fn send_streaming(
        &self,
        agent: &Endpoint,
        request: SendMessageRequest,
        trace: &Trace,
    ) -> Result<AgentStream, A2aError> {
        let params = agent
            .version
            .encode_send_params(request)
            .map_err(|e| A2aError::Stream(e.to_string()))?;
        self.stream_call(agent, Method::SendStreamingMessage, params, trace)
            .await
    }

    /// Picks a task's stream up again with `SubscribeToTask`
    /// (`tasks/resubscribe`): the task's snapshot first
    /// ([`AgentEvent::Snapshot`]), then its live results. A task that ended
    /// meanwhile cannot be subscribed to; it is read with `GetTask`, and its
    /// final snapshot is the whole stream.
    pub async fn subscribe(
        &self,
        agent: &Endpoint,
        task_id: &str,
        trace: &Trace,
    ) -> Result<AgentStream, A2aError> {
        let params = serde_json::json!({"id": task_id});
        match self
            .stream_call(agent, Method::SubscribeToTask, params, trace)
            .await
        {
            Err(A2aError::Rpc { code, .. }) if code == error_code::UNSUPPORTED_OPERATION => {
                tracing::info!(
                    task_id,
                    "the task ended while its stream was down; reading it with GetTask"
                );
                let task = self
                    .task_call(agent, Method::GetTask, task_id, trace)
                    .await?;
                Ok(Box::pin(stream::iter(task_events(task))))
            }
            other => other,
        }
    }

    /// Asks the agent to stop a task with `CancelTask` (`tasks/cancel`); the
    /// task as the agent reports it then. The task ends `canceled` on its
    /// own stream, which the turn goes on reading.
    pub async fn cancel(
        &self,
        agent: &Endpoint,
        task_id: &str,
        trace: &Trace,
    ) -> Result<Task, A2aError> {
        self.task_call(agent, Method::CancelTask, task_id, trace)
            .await
    }

    /// `GetTask` or `CancelTask`: params `{"id"}`, a task back.
    async fn task_call(
        &self,
        agent: &Endpoint,
        method: Method,
        task_id: &str,
        trace: &Trace,
    ) -> Result<Task, A2aError> {
        let params = serde_json::json!({"id": task_id});
        let span = rpc_span(agent, method);
        let response = self
            .call(agent, method, params, trace, &span)
            .timeout(UNARY_TIMEOUT)
            .send()
            .instrument(span)
            .await
            .map_err(A2aError::Connect)?;
        if !response.status().is_success() {
            return Err(A2aError::from_status(response.status()));
        }
        let body: JsonRpcResponse<Value> = response
            .json()
            .await
            .map_err(|e| A2aError::Stream(format!("unreadable agent answer: {e}")))?;
        match (body.result, body.error) {
            (_, Some(err)) => Err(A2aError::Rpc {
                code: err.code,
                message: err.message,
            }),
            (Some(task), None) => agent
                .version
                .decode_task(task)
                .map_err(|e| A2aError::Stream(format!("unreadable task: {e}"))),
            (None, None) => Err(A2aError::Stream(
                "agent answered neither result nor error".into(),
            )),
        }
    }

    /// A JSON-RPC call of `method` in the endpoint's version, with the
    /// `A2A-Version` header naming it.
    fn call(
        &self,
        agent: &Endpoint,
        method: Method,
        params: Value,
        trace: &Trace,
        span: &tracing::Span,
    ) -> reqwest::RequestBuilder {
        let envelope = JsonRpcRequest::new(
            confab_kit::ids::new_id("rpc"),
            method.name(agent.version),
            params,
        );
        let http = if agent.http2 {
            &self.http2
        } else {
            &self.http1
        };
        let call = http
            .get()
            .post(&agent.url)
            .bearer_auth(agent.credential.expose())
            .header(VERSION_HEADER, agent.version.as_str())
            .json(&envelope);
        trace.apply(call, span)
    }

    async fn stream_call(
        &self,
        agent: &Endpoint,
        method: Method,
        params: Value,
        trace: &Trace,
    ) -> Result<AgentStream, A2aError> {
        let span = rpc_span(agent, method);
        let response = self
            .call(agent, method, params, trace, &span)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .instrument(span)
            .await
            .map_err(A2aError::Connect)?;
        let status = response.status();
        if !status.is_success() {
            return Err(A2aError::from_status(status));
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
        let version = agent.version;
        Ok(Box::pin(
            without_bom(response.bytes_stream())
                .eventsource()
                .flat_map(move |event| stream::iter(decode(version, event))),
        ))
    }
}

/// The UTF-8 byte order mark, which an SSE stream may start with (the SSE
/// specification says to ignore it).
const BOM: &[u8] = "\u{feff}".as_bytes();

/// `stream` with a leading byte order mark removed, however the first
/// chunks split it. eventsource-stream 0.2.3 strips a BOM by slicing one
/// byte off a three-byte character and panics, so an agent that sends one
/// would crash the turn; the fuzz test found it.
pub(crate) fn without_bom<E>(
    stream: impl Stream<Item = Result<Bytes, E>>,
) -> impl Stream<Item = Result<Bytes, E>> {
    // `Some(prefix)` while the start could still be a BOM; `None` once decided.
    stream.scan(Some(Vec::new()), |start, chunk| {
        let out = match (start.as_mut(), chunk) {
            (Some(prefix), Ok(bytes)) => {
                prefix.extend_from_slice(&bytes);
                if prefix.len() < BOM.len() && BOM.starts_with(prefix) {
                    Ok(Bytes::new())
                } else {
                    let prefix = std::mem::take(prefix);
                    *start = None;
                    let body = prefix.strip_prefix(BOM).unwrap_or(&prefix);
                    Ok(Bytes::copy_from_slice(body))
                }
            }
            (_, chunk) => chunk,
        };
        std::future::ready(Some(out))
    })
}

/// The client span of one JSON-RPC call to an agent, up to its answer's
/// head (a stream's events are the turn's), as the OpenTelemetry RPC
/// conventions name it.
fn rpc_span(agent: &Endpoint, method: Method) -> tracing::Span {
    let name = method.name(agent.version);
    tracing::info_span!(
        "a2a",
        otel.name = %format_args!("a2a {name}"),
        otel.kind = "client",
        rpc.system = "jsonrpc",
        rpc.method = name,
        url.full = %agent.url,
    )
}

/// What a turn's calls to its agent carry along from the request that
/// started it, so logs and traces of both sides join up.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    pub request_id: Option<String>,
    /// W3C trace context; the agents pass it on to llm-proxy-service.
    pub traceparent: Option<String>,
}

impl Trace {
    pub fn from_request(req: &actix_web::HttpRequest) -> Self {
        Self {
            request_id: confab_kit::server::request_id(req),
            traceparent: confab_kit::server::traceparent(req),
        }
    }

    /// The request's id and trace context on `call`: the trace context of
    /// `span`, the call's own, when it is exported (the agent's task is
    /// then its child), else the request's.
    fn apply(
        &self,
        mut call: reqwest::RequestBuilder,
        span: &tracing::Span,
    ) -> reqwest::RequestBuilder {
        if let Some(id) = &self.request_id {
            call = call.header(confab_protocol::auth::REQUEST_ID_HEADER, id);
        }
        match confab_kit::telemetry::traceparent_of(span) {
            Some(traceparent) => call = call.header("traceparent", traceparent),
            None => {
                if let Some(traceparent) = &self.traceparent {
                    call = call.header("traceparent", traceparent);
                }
            }
        }
        call
    }
}

/// Where an agent is reached, the protocol version spoken there and the
/// credential it is called with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub version: ProtocolVersion,
    pub credential: AgentCredential,
    /// Whether the agent is called over HTTP/2 without TLS, with prior
    /// knowledge ([`crate::a2a::registry::AgentEntry::http2`]).
    pub http2: bool,
}

/// The bearer token chat-service presents to an agent: the agent's own key
/// from the settings, else the service token. Never shown: its `Debug` is
/// redacted, and reqwest marks the header it goes into as sensitive.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct AgentCredential(String);

impl AgentCredential {
    pub fn new(token: &str) -> Self {
        Self(token.into())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AgentCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgentCredential([redacted])")
    }
}

/// How long `GetTask` or `CancelTask` may take: short calls, and a turn
/// should not hang on an agent that does not answer them.
const UNARY_TIMEOUT: Duration = Duration::from_secs(5);

fn decode<E: std::fmt::Display>(
    version: ProtocolVersion,
    event: Result<eventsource_stream::Event, E>,
) -> Vec<Result<AgentEvent, A2aError>> {
    let event = match event {
        Ok(event) => event,
        Err(err) => return vec![Err(A2aError::Stream(err.to_string()))],
    };
    let envelope: JsonRpcResponse<&RawValue> = match serde_json::from_str(&event.data) {
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
    let result = match envelope
        .result
        .map(|r| version.decode_stream_result(r.get()))
    {
        None => return Vec::new(),
        Some(Ok(result)) => result,
        Some(Err(err)) => {
            return vec![Err(A2aError::Stream(format!(
                "unreadable stream result: {err}"
            )))];
        }
    };
    match result {
        StreamResponse::Task(task) => task_events(task),
        StreamResponse::Message(message) => parts(message.parts),
        StreamResponse::ArtifactUpdate(update) => parts(update.artifact.parts),
        StreamResponse::StatusUpdate(update) => {
            let usage = UsageMetadata::read(update.metadata.as_ref());
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

/// A task as events: its id, what it produced so far, its status.
fn task_events(task: Task) -> Vec<Result<AgentEvent, A2aError>> {
    let mut events = vec![Ok(AgentEvent::Task {
        task_id: task.id.clone(),
    })];
    if !task.artifacts.is_empty() {
        let (text, data) = task.artifacts.into_iter().flat_map(|a| a.parts).fold(
            (String::new(), Vec::new()),
            |(mut text, mut data), part| {
                if let Some(t) = part.text {
                    text.push_str(&t);
                } else if let Some(d) = part.data {
                    data.push(d);
                }
                (text, data)
            },
        );
        events.push(Ok(AgentEvent::Snapshot { text, data }));
    }
    events.push(Ok(AgentEvent::Status {
        state: task.status.state,
        text: task
            .status
            .message
            .map(|m| m.text())
            .filter(|t| !t.is_empty()),
        usage: UsageMetadata::read(task.metadata.as_ref()),
    }));
    events
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_never_shows_its_credential() {
        let endpoint = Endpoint {
            url: "http://127.0.0.1:8101/".into(),
            version: ProtocolVersion::V1_0,
            credential: AgentCredential::new("s3cret-agent-key"),
            http2: false,
        };
        let shown = format!("{endpoint:?} {:?}", endpoint.credential);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }
}

#[cfg(test)]
#[path = "client_fuzz.rs"]
mod fuzz;
