//! The agents' LLM client: streaming chat completions from llm-proxy-service.

use std::time::Duration;

use confab_kit::http_client::PerThreadClient;
use confab_protocol::auth::{
    AGENT_ID_HEADER, API_KEY_ID_HEADER, CONVERSATION_ID_HEADER, USER_ID_HEADER,
};
use confab_protocol::chat::Cost;
use confab_protocol::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatMessage, ErrorBody, StreamOptions,
    ToolCallDelta, Usage,
};
use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use tracing::Instrument;

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
    /// The personal API key the user started the turn with, so the proxy
    /// counts the call against that key's usage and budget as well.
    pub api_key_id: Option<String>,
    pub conversation_id: Option<String>,
    pub traceparent: Option<String>,
}

/// One piece of a streamed completion.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmEvent {
    Text(String),
    /// A piece of a tool call; pieces with the same index make one call.
    ToolCall(ToolCallDelta),
    /// The call's tokens, and its cost when the proxy knows the model's
    /// price (`usage.cost`, in currency units).
    Usage(Usage, Option<Cost>),
}

/// The `usage.cost` llm-proxy-service adds to the usage chunk; read apart
/// from [`ChatCompletionChunk`], whose `Usage` is OpenAI's shape.
#[derive(Deserialize)]
struct PricedChunk {
    usage: PricedUsage,
}

#[derive(Deserialize)]
struct PricedUsage {
    #[serde(default)]
    cost: Option<serde_json::Value>,
}

impl PricedChunk {
    /// The cost in a usage chunk's `data`, if it has a readable one.
    fn cost(data: &str) -> Option<Cost> {
        let chunk: PricedChunk = serde_json::from_str(data).ok()?;
        Cost::from_units(chunk.usage.cost?.as_f64()?)
    }
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
        let span = self.span(who);
        let response = self
            .request(messages, tools, who, &span)
            .send()
            .instrument(span.clone())
            .await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            anyhow::bail!("llm-proxy answered {status}: {body}");
        }
        // The span lasts as long as the stream: it ends when the caller has
        // read (or dropped) the completion.
        Ok(response
            .bytes_stream()
            .eventsource()
            .flat_map(|event| futures_util::stream::iter(decode(event)))
            .inspect(move |event| {
                if let Ok(LlmEvent::Usage(usage, _)) = event {
                    let input = i64::try_from(usage.prompt_tokens).unwrap_or(i64::MAX);
                    let output = i64::try_from(usage.completion_tokens).unwrap_or(i64::MAX);
                    span.record("gen_ai.usage.input_tokens", input);
                    span.record("gen_ai.usage.output_tokens", output);
                    tracing::debug!(parent: &span, input_tokens = input, output_tokens = output, "the model answered");
                }
            }))
    }

    /// The GenAI client span of one call, in the trace of the task's request
    /// (the task runs apart from it). llm-proxy-service's own span of the
    /// call is its child.
    fn span(&self, who: &Attribution) -> tracing::Span {
        let model = &self.settings.model;
        let span = tracing::info_span!(
            "gen_ai.chat",
            otel.name = %format!("chat {model}"),
            otel.kind = "client",
            gen_ai.operation.name = "chat",
            // The OpenAI-compatible API of Confab's own LLM proxy.
            gen_ai.provider.name = "confab.llm_proxy",
            gen_ai.request.model = %model,
            gen_ai.agent.name = %who.agent_id,
            gen_ai.conversation.id = who.conversation_id.as_deref().unwrap_or(""),
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
        );
        confab_kit::telemetry::set_parent_from(&span, who.traceparent.as_deref());
        span
    }

    /// The call to the proxy: the completion, streamed with its usage,
    /// under the agent's key and attributed to `who`.
    fn request(
        &self,
        messages: Vec<ChatMessage>,
        tools: Vec<serde_json::Value>,
        who: &Attribution,
        span: &tracing::Span,
    ) -> reqwest::RequestBuilder {
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
        if let Some(key) = &who.api_key_id {
            call = call.header(API_KEY_ID_HEADER, key);
        }
        if let Some(conversation) = &who.conversation_id {
            call = call.header(CONVERSATION_ID_HEADER, conversation);
        }
        // The call's own span when it is exported, else the task's hop.
        if let Some(traceparent) =
            confab_kit::telemetry::traceparent_of(span).or_else(|| who.traceparent.clone())
        {
            call = call.header("traceparent", traceparent);
        }
        call
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
        // Only the usage chunk (one per call) is read a second time.
        events.push(Ok(LlmEvent::Usage(usage, PricedChunk::cost(&event.data))));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> LlmClient {
        let settings = LlmSettings {
            base_url: "http://127.0.0.1:8006/".into(),
            model: "builtin".into(),
            timeout_secs: 5,
            http2: false,
        };
        let http = PerThreadClient::new(reqwest::Client::builder).unwrap();
        LlmClient::new(http, settings, "agent-key".into())
    }

    fn sse(data: &str) -> Result<eventsource_stream::Event, String> {
        Ok(eventsource_stream::Event {
            data: data.into(),
            ..Default::default()
        })
    }

    #[test]
    fn a_call_names_the_turns_user_and_api_key_to_the_proxy() {
        let who = Attribution {
            agent_id: "math".into(),
            user_id: Some("usr-1".into()),
            api_key_id: Some("key-1".into()),
            conversation_id: Some("conv-1".into()),
            traceparent: None,
        };
        let call = client()
            .request(Vec::new(), Vec::new(), &who, &tracing::Span::none())
            .build()
            .unwrap();
        let headers = call.headers();
        assert_eq!(headers[USER_ID_HEADER], "usr-1");
        assert_eq!(headers[API_KEY_ID_HEADER], "key-1");
        assert_eq!(headers[CONVERSATION_ID_HEADER], "conv-1");
        assert_eq!(headers["authorization"], "Bearer agent-key");

        let without_key = Attribution {
            api_key_id: None,
            ..who
        };
        let call = client()
            .request(Vec::new(), Vec::new(), &without_key, &tracing::Span::none())
            .build()
            .unwrap();
        assert!(call.headers().get(API_KEY_ID_HEADER).is_none());
    }

    #[test]
    fn the_usage_chunk_carries_the_calls_cost_when_the_proxy_knows_it() {
        let priced = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"cost":0.000123}}"#;
        let events: Vec<LlmEvent> = decode(sse(priced))
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            events,
            vec![LlmEvent::Usage(
                Usage::new(3, 4),
                Cost::from_units(0.000_123)
            )]
        );
        let unpriced = priced.replace(r#","cost":0.000123"#, "");
        let events: Vec<LlmEvent> = decode(sse(&unpriced))
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(events, vec![LlmEvent::Usage(Usage::new(3, 4), None)]);
    }
}
