//! What the builtin model says to a request: the first matching rule's
//! text and tool calls, or the echo, with usage counted per token.

use chrono::Utc;
use confab_protocol::openai::{
    ChatCompletion, ChatCompletionRequest, ChatMessage, Choice, ToolCall, Usage,
};
use serde_json::Value;

use super::Builtin;
use super::fixtures::On;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The reply text split into tokens; concatenated they are the text.
    pub tokens: Vec<String>,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    /// The error the model breaks off with, after the text.
    pub failure: Option<String>,
}

impl Answer {
    pub fn text(&self) -> String {
        self.tokens.concat()
    }

    pub(super) fn finish_reason(&self) -> &'static str {
        if self.tool_calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        }
    }

    /// The answer as a whole `chat.completion`.
    pub(super) fn completion(&self, id: String, model: &str) -> ChatCompletion {
        // Like OpenAI: a message that only calls tools has no content.
        let message = if self.tool_calls.is_empty() {
            ChatMessage::new("assistant", self.text())
        } else {
            let mut message = ChatMessage::assistant_tool_calls(self.tool_calls.clone());
            let text = self.text();
            message.content = (!text.is_empty()).then_some(Value::String(text));
            message
        };
        ChatCompletion {
            id,
            object: "chat.completion".into(),
            created: Utc::now().timestamp(),
            model: model.to_owned(),
            choices: vec![Choice {
                index: 0,
                message,
                finish_reason: Some(self.finish_reason().into()),
            }],
            usage: Some(self.usage),
        }
    }
}

impl Builtin {
    /// The answer to a request, by the first matching rule or the echo.
    pub fn answer(&self, request: &ChatCompletionRequest) -> Answer {
        let last = request.messages.last();
        let last_user = request.last_user_text().unwrap_or_default();
        let (on, subject, tool_name) = match last {
            Some(m) if m.role == "tool" => (On::Tool, m.text(), tool_name_of(request, m)),
            _ => (On::User, last_user.clone(), None),
        };
        let offered = offered_tools(request);
        let rule = self.rules.iter().find_map(|rule| {
            if rule.on != on {
                return None;
            }
            if !rule.tools.is_empty()
                && !tool_name
                    .as_ref()
                    .is_some_and(|name| rule.tools.contains(name))
            {
                return None;
            }
            // Like a real model, it calls only the tools the request offers.
            if !rule
                .tool_calls
                .iter()
                .all(|call| offered.contains(&call.name.as_str()))
            {
                return None;
            }
            rule.pattern.captures(&subject).map(|caps| (rule, caps))
        });
        let (text, tool_calls, failure) = match rule {
            Some((rule, caps)) => {
                let expand = |template: &str| {
                    let mut out = String::new();
                    caps.expand(template, &mut out);
                    out
                };
                let text = rule.text.as_deref().map(expand).unwrap_or_default();
                let calls = rule
                    .tool_calls
                    .iter()
                    .enumerate()
                    .map(|(i, spec)| {
                        ToolCall::function(
                            format!("call_{}_{i}", short_id()),
                            spec.name.clone(),
                            expand(&spec.arguments),
                        )
                    })
                    .collect();
                (text, calls, rule.fail.as_deref().map(expand))
            }
            None if last_user.trim().is_empty() => {
                ("I have nothing to answer yet.".to_owned(), Vec::new(), None)
            }
            None => (last_user, Vec::new(), None),
        };
        let input_tokens = request
            .messages
            .iter()
            .map(|m| count_tokens(&m.text()))
            .sum();
        let tokens = tokenize(&text);
        let call_tokens: u64 = tool_calls
            .iter()
            .map(|c| 1 + count_tokens(&c.function.arguments))
            .sum();
        let usage = Usage::new(input_tokens, tokens.len() as u64 + call_tokens);
        Answer {
            tokens,
            tool_calls,
            usage,
            failure,
        }
    }
}

/// The names of the functions the request offers as tools.
fn offered_tools(request: &ChatCompletionRequest) -> Vec<&str> {
    request
        .tools
        .iter()
        .flatten()
        .filter_map(|tool| tool.get("function")?.get("name")?.as_str())
        .collect()
}

/// The name of the tool whose result `message` is, from the assistant
/// message that asked for it.
fn tool_name_of(request: &ChatCompletionRequest, message: &ChatMessage) -> Option<String> {
    let id = message.tool_call_id.as_deref()?;
    request
        .messages
        .iter()
        .filter_map(|m| m.tool_calls.as_ref())
        .flatten()
        .find(|c| c.id == id)
        .map(|c| c.function.name.clone())
}

pub(super) fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
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
