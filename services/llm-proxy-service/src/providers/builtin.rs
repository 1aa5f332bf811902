//! The builtin model: deterministic, offline, documented (DESIGN §10).
//!
//! It answers the last user message by echoing it back, counts usage per
//! token (a token is a word with its leading whitespace), and can wait before
//! the first chunk and between chunks so benchmarks see realistic timing. It
//! goes through the same recording and streaming code as a real provider.

use std::time::Duration;

use confab_protocol::openai::{ChatCompletionRequest, Usage};
use serde::Deserialize;

/// Provider name recorded in `llm_calls.provider`.
pub const PROVIDER: &str = "builtin";

#[derive(Debug, Clone, Deserialize, Default)]
pub struct BuiltinSettings {
    #[serde(default)]
    pub first_chunk_delay_ms: u64,
    #[serde(default)]
    pub chunk_delay_ms: u64,
}

/// What the builtin model says to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The reply split into tokens; concatenated they are the reply text.
    pub tokens: Vec<String>,
    pub usage: Usage,
}

impl Answer {
    pub fn text(&self) -> String {
        self.tokens.concat()
    }
}

#[derive(Debug, Clone)]
pub struct Builtin {
    settings: BuiltinSettings,
}

impl Builtin {
    pub fn new(settings: BuiltinSettings) -> Self {
        Self { settings }
    }

    /// True for the model names this provider serves: `builtin` and `builtin/…`.
    pub fn serves(model: &str) -> bool {
        model == PROVIDER || model.starts_with("builtin/")
    }

    pub fn first_chunk_delay(&self) -> Duration {
        Duration::from_millis(self.settings.first_chunk_delay_ms)
    }

    pub fn chunk_delay(&self) -> Duration {
        Duration::from_millis(self.settings.chunk_delay_ms)
    }

    /// The echo answer: the last user message, or a fixed sentence when there is none.
    pub fn answer(&self, request: &ChatCompletionRequest) -> Answer {
        let reply = request
            .last_user_text()
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| "I have nothing to answer yet.".to_owned());
        let input_tokens = request
            .messages
            .iter()
            .map(|m| count_tokens(&m.text()))
            .sum();
        let tokens = tokenize(&reply);
        let usage = Usage::new(input_tokens, tokens.len() as u64);
        Answer { tokens, usage }
    }
}

/// Splits text into tokens that concatenate back to it exactly: each token is
/// a run of whitespace followed by a run of non-whitespace.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut seen_word = false;
    for ch in text.chars() {
        if ch.is_whitespace() && seen_word {
            tokens.push(std::mem::take(&mut current));
            seen_word = false;
        }
        if !ch.is_whitespace() {
            seen_word = true;
        }
        current.push(ch);
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

pub fn count_tokens(text: &str) -> u64 {
    tokenize(text).len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_protocol::openai::ChatMessage;

    #[test]
    fn tokens_concatenate_back_to_the_text() {
        for text in ["", "one", "two words", "  lead and trail  ", "a\nb\tc"] {
            assert_eq!(tokenize(text).concat(), text);
        }
        assert_eq!(tokenize("what is 2+2"), vec!["what", " is", " 2+2"]);
    }

    #[test]
    fn echo_answers_the_last_user_message_and_counts_usage() {
        let model = Builtin::new(BuiltinSettings::default());
        let request = ChatCompletionRequest {
            model: "builtin".into(),
            messages: vec![
                ChatMessage::new("system", "You are a calculator"),
                ChatMessage::new("user", "first"),
                ChatMessage::new("user", "what is 2+2"),
            ],
            stream: None,
            stream_options: None,
            extra: Default::default(),
        };
        let answer = model.answer(&request);
        assert_eq!(answer.text(), "what is 2+2");
        assert_eq!(answer.usage.prompt_tokens, 4 + 1 + 3);
        assert_eq!(answer.usage.completion_tokens, 3);
    }
}
