//! The builtin model: deterministic, offline, documented (DESIGN §10).
//!
//! It answers from a fixtures file of rules (see `infra/llm-fixtures/demo.toml`,
//! compiled in as the default): the first rule whose regex matches the last
//! user message, or the last tool result, answers with its text and/or tool
//! calls, `$1`/`${name}` replaced by the regex's captures. With no matching
//! rule it echoes the last user message. A rule may also `fail`: the model
//! then breaks off after its text, as a provider whose connection drops mid-
//! answer (streamed), or answers HTTP 500 (not streamed), so the error paths
//! can be seen offline too. Usage is counted per token (a word with its
//! leading whitespace). It can wait before the first chunk and
//! between chunks, so benchmarks see realistic timing, and it streams through
//! the same code a real provider does.

mod answer;
mod fixtures;
mod stream;

use std::time::Duration;

use anyhow::Context;
use confab_protocol::openai::{ChatCompletionRequest, ErrorBody};
use serde::Deserialize;
use serde_json::Value;

use self::answer::short_id;
pub use self::answer::{Answer, count_tokens, tokenize};
use self::fixtures::{DEMO_FIXTURES, Rule, parse_rules};
use super::{Start, UpstreamError};

#[derive(Debug, Clone, Deserialize, Default)]
pub struct BuiltinSettings {
    /// A fixtures file; empty means the demo fixtures built into the binary.
    #[serde(default)]
    pub fixtures: String,
    #[serde(default)]
    pub first_chunk_delay_ms: u64,
    #[serde(default)]
    pub chunk_delay_ms: u64,
}

pub struct Builtin {
    rules: Vec<Rule>,
    first_chunk_delay: Duration,
    chunk_delay: Duration,
}

impl Builtin {
    pub fn new(settings: &BuiltinSettings) -> anyhow::Result<Self> {
        let text = if settings.fixtures.is_empty() {
            DEMO_FIXTURES.to_owned()
        } else {
            std::fs::read_to_string(&settings.fixtures)
                .with_context(|| format!("reading the fixtures file {}", settings.fixtures))?
        };
        Ok(Self {
            rules: parse_rules(&text)?,
            first_chunk_delay: Duration::from_millis(settings.first_chunk_delay_ms),
            chunk_delay: Duration::from_millis(settings.chunk_delay_ms),
        })
    }

    /// Answers `request` as a whole completion or a stream.
    pub async fn start(
        &self,
        model: &str,
        request: &ChatCompletionRequest,
        stream: bool,
    ) -> Result<Start, UpstreamError> {
        let answer = self.answer(request);
        let id = format!("chatcmpl-{}", short_id());
        if stream {
            return Ok(self.stream(&id, model, answer));
        }
        tokio::time::sleep(self.first_chunk_delay).await;
        if let Some(message) = &answer.failure {
            let body = ErrorBody::new(message.as_str(), "server_error", "builtin_failure");
            return Err(UpstreamError::Refused {
                status: 500,
                body: serde_json::to_string(&body).unwrap_or_default(),
            });
        }
        Ok(Start::Complete(
            serde_json::to_value(answer.completion(id, model)).unwrap_or(Value::Null),
        ))
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
