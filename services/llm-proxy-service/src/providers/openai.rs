//! Any OpenAI-compatible upstream: OpenAI, Gemini's OpenAI endpoint, Ollama,
//! vLLM, llama.cpp.
//!
//! The client's request goes on untouched but for `model` (the upstream's
//! own name) and, when streaming, `stream_options.include_usage`, which the
//! proxy always asks for so usage is always recorded.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use confab_kit::http_client::PerThreadClient;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Start, UpstreamError};

#[derive(Debug, Clone, Deserialize)]
pub struct OpenAiSettings {
    /// Up to and including `/v1`, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// The environment variable holding the API key (never the key itself).
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Longest wait for the response headers.
    #[serde(default = "default_first_byte_timeout")]
    pub first_byte_timeout_secs: u64,
    /// Models listed on `/v1/models` as `provider/model`.
    #[serde(default)]
    pub models: Vec<String>,
}

fn default_connect_timeout() -> u64 {
    5
}

fn default_first_byte_timeout() -> u64 {
    60
}

pub struct OpenAi {
    url: String,
    api_key: Option<String>,
    headers: reqwest::header::HeaderMap,
    first_byte_timeout: Duration,
    models: Vec<String>,
    /// A reply streams back over a connection of the calling worker.
    http: PerThreadClient,
}

impl OpenAi {
    pub fn new(name: &str, settings: &OpenAiSettings) -> anyhow::Result<Self> {
        let api_key = match &settings.api_key_env {
            Some(var) => Some(std::env::var(var).with_context(|| {
                format!("provider '{name}' reads its API key from ${var}, which is not set")
            })?),
            None => None,
        };
        let mut headers = reqwest::header::HeaderMap::new();
        for (key, value) in &settings.headers {
            headers.insert(
                reqwest::header::HeaderName::from_bytes(key.as_bytes())
                    .with_context(|| format!("provider '{name}': bad header name {key}"))?,
                reqwest::header::HeaderValue::from_str(value)
                    .with_context(|| format!("provider '{name}': bad value for header {key}"))?,
            );
        }
        let connect_timeout = Duration::from_secs(settings.connect_timeout_secs);
        let http = PerThreadClient::new(move || {
            reqwest::Client::builder()
                .connect_timeout(connect_timeout)
                .pool_max_idle_per_host(256)
        })?;
        Ok(Self {
            url: format!(
                "{}/chat/completions",
                settings.base_url.trim_end_matches('/')
            ),
            api_key,
            headers,
            first_byte_timeout: Duration::from_secs(settings.first_byte_timeout_secs),
            models: settings.models.clone(),
            http,
        })
    }

    pub fn models(&self) -> &[String] {
        &self.models
    }

    pub async fn start(
        &self,
        model: &str,
        mut body: Map<String, Value>,
        stream: bool,
    ) -> Result<Start, UpstreamError> {
        body.insert("model".into(), Value::String(model.to_owned()));
        if stream {
            let options = body.entry("stream_options").or_insert_with(|| json!({}));
            if let Some(options) = options.as_object_mut() {
                options.insert("include_usage".into(), Value::Bool(true));
            }
        }
        let mut request = self
            .http
            .get()
            .post(&self.url)
            .headers(self.headers.clone())
            .json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        // The provider request's span (`call::attempt`) as its parent, so an
        // upstream that traces (a self-hosted vLLM, say) joins the turn's
        // trace (DESIGN §11).
        if let Some(traceparent) = confab_kit::telemetry::traceparent_of(&tracing::Span::current())
        {
            request = request.header(confab_kit::trace_context::TRACEPARENT, traceparent);
        }
        let response = match tokio::time::timeout(self.first_byte_timeout, request.send()).await {
            Err(_) => return Err(UpstreamError::Retryable("upstream timed out".into())),
            Ok(Err(err)) => {
                return Err(UpstreamError::Retryable(format!(
                    "upstream unreachable: {err}"
                )));
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(UpstreamError::Retryable(format!(
                "upstream answered {status}"
            )));
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(UpstreamError::Refused {
                status: status.as_u16(),
                body,
            });
        }
        if stream {
            let events = response
                .bytes_stream()
                .eventsource()
                .map(|event| match event {
                    Ok(event) => Ok(event.data),
                    Err(err) => Err(UpstreamError::Broken(format!(
                        "upstream stream broke: {err}"
                    ))),
                })
                .take_while(|data| std::future::ready(!matches!(data, Ok(d) if d == "[DONE]")));
            Ok(Start::Stream(Box::pin(events)))
        } else {
            let body = tokio::time::timeout(self.first_byte_timeout, response.json::<Value>())
                .await
                .map_err(|_| UpstreamError::Retryable("upstream timed out".into()))?
                .map_err(|e| UpstreamError::Broken(format!("unreadable upstream answer: {e}")))?;
            Ok(Start::Complete(body))
        }
    }
}
