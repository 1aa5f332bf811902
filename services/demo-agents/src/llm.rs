//! The agents' LLM client: streaming chat completions from llm-proxy-service.

use std::time::Duration;

use confab_kit::http_client::PerThreadClient;
use confab_protocol::auth::{AGENT_ID_HEADER, CONVERSATION_ID_HEADER, USER_ID_HEADER};
use confab_protocol::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatMessage, ErrorBody, StreamOptions,
    ToolCallDelta, Usage,
};
use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct LlmSettings {
    pub base_url: String,
    pub model: String,
    pub timeout_secs: u64,
    /// Whether the LLM server is called over HTTP/2 without negotiating it
    /// (prior knowledge), as llm-proxy-service can be; else HTTP/1.1.
    #[serde(default)]
    pub http2: bool,
}

/// Who a call is made for; sent to the proxy so it can attribute the call.
#[derive(Debug, Clone, Default)]
pub struct Attribution {
    pub agent_id: String,
    pub user_id: Option<String>,
    pub conversation_id: Option<String>,
    pub traceparent: Option<String>,
}

/// One piece of a streamed completion.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmEvent {
    Text(String),
    /// A piece of a tool call; pieces with the same index make one call.
    ToolCall(ToolCallDelta),
    Usage(Usage),
}

/// Completions stream back over connections of the calling worker
/// ([`PerThreadClient`]).
#[derive(Clone)]
pub struct LlmClient {
    http: PerThreadClient,
    settings: LlmSettings,
    key: String,
}

impl LlmClient {
    pub fn new(http: PerThreadClient, settings: LlmSettings, key: String) -> Self {
        Self {
            http,
            settings,
            key,
        }
    }

    /// Streams a completion of `messages`. Fails before the first event if the
    /// proxy refuses the call; an error mid-stream ends the stream with `Err`.
    pub async fn stream(
        &self,
        messages: Vec<ChatMessage>,
        tools: Vec<serde_json::Value>,
        who: &Attribution,
    ) -> anyhow::Result<impl Stream<Item = anyhow::Result<LlmEvent>> + use<>> {
        let request = ChatCompletionRequest {
            model: self.settings.model.clone(),
            messages,
            stream: Some(true),
            stream_options: Some(StreamOptions {
                include_usage: true,
            }),
            tools: (!tools.is_empty()).then_some(tools),
            extra: Default::default(),
        };
        let url = format!(
            "{}/v1/chat/completions",
            self.settings.base_url.trim_end_matches('/')
        );
        let mut call = self
            .http
            .get()
            .post(url)
            .bearer_auth(&self.key)
            .timeout(Duration::from_secs(self.settings.timeout_secs))
            .header(AGENT_ID_HEADER, &who.agent_id)
            .json(&request);
        if let Some(user) = &who.user_id {
            call = call.header(USER_ID_HEADER, user);
        }
        if let Some(conversation) = &who.conversation_id {
            call = call.header(CONVERSATION_ID_HEADER, conversation);
        }
        if let Some(traceparent) = &who.traceparent {
            call = call.header("traceparent", traceparent);
        }
        let response = call.send().await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            anyhow::bail!("llm-proxy answered {status}: {body}");
        }
        Ok(response
            .bytes_stream()
            .eventsource()
            .flat_map(|event| futures_util::stream::iter(decode(event))))
    }
}

/// The events of one SSE event of the completion stream.
fn decode<E: std::fmt::Display>(
    event: Result<eventsource_stream::Event, E>,
) -> Vec<anyhow::Result<LlmEvent>> {
    let event = match event {
        Err(err) => return vec![Err(anyhow::anyhow!("LLM stream broke: {err}"))],
        Ok(event) if event.data == "[DONE]" => return Vec::new(),
        Ok(event) => event,
    };
    // A stream that broke ends with OpenAI's error body.
    if let Ok(body) = serde_json::from_str::<ErrorBody>(&event.data) {
        return vec![Err(anyhow::anyhow!(
            "the model failed: {}",
            body.error.message
        ))];
    }
    let chunk = match serde_json::from_str::<ChatCompletionChunk>(&event.data) {
        Ok(chunk) => chunk,
        Err(err) => return vec![Err(anyhow::anyhow!("unreadable LLM chunk: {err}"))],
    };
    let mut events = Vec::new();
    if let Some(usage) = chunk.usage {
        events.push(Ok(LlmEvent::Usage(usage)));
    }
    for choice in chunk.choices {
        if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
            events.push(Ok(LlmEvent::Text(text)));
        }
        for piece in choice.delta.tool_calls.unwrap_or_default() {
            events.push(Ok(LlmEvent::ToolCall(piece)));
        }
    }
    events
}
