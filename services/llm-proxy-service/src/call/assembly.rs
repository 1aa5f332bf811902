//! A streamed answer put together from its chunks: text, tool calls, usage,
//! finish reason and model.

use std::collections::BTreeMap;

use confab_protocol::openai::{ToolCall, ToolCallDelta, Usage};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The parts of a streamed chunk the proxy reads. Deliberately not the full
/// `ChatCompletionChunk` (whose flattened extra fields make parsing several
/// times slower): every chunk of every stream is parsed on the hot path, and
/// the client gets the upstream's bytes, not a re-encoding.
#[derive(Deserialize)]
pub(super) struct ChunkView {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    pub choices: Vec<ChoiceView>,
    #[serde(default)]
    pub usage: Option<UsageView>,
}

/// A chunk's `usage`: the protocol's [`Usage`] and the cached part of the
/// input, which OpenAI-compatible providers report as
/// `prompt_tokens_details.cached_tokens` (priced apart: `crate::pricing`).
#[derive(Deserialize, Clone, Copy)]
pub(super) struct UsageView {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Deserialize, Clone, Copy, Default)]
pub(super) struct PromptTokensDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl UsageView {
    fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            total_tokens: self.total_tokens,
        }
    }

    fn cached_tokens(&self) -> u64 {
        self.prompt_tokens_details
            .and_then(|details| details.cached_tokens)
            .unwrap_or(0)
    }
}

/// The cached input tokens of a `usage` object as an upstream sent it (a
/// whole completion's), 0 when it does not say.
pub fn cached_tokens(usage: &Value) -> u64 {
    usage
        .get("prompt_tokens_details")
        .and_then(|details| details.get("cached_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

#[derive(Deserialize)]
pub(super) struct ChoiceView {
    #[serde(default)]
    delta: DeltaView,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct DeltaView {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

/// What a stream said so far.
#[derive(Default)]
pub struct Assembly {
    pub content: String,
    pub tool_calls: BTreeMap<u32, ToolCall>,
    pub usage: Option<Usage>,
    /// The part of the usage's input tokens served from the prompt cache.
    pub cached_input_tokens: u64,
    pub finish_reason: Option<String>,
    pub model: Option<String>,
}

impl Assembly {
    /// Adds a chunk; returns the trace data of its delta, if it had one.
    pub(super) fn add(&mut self, chunk: &ChunkView) -> Option<Value> {
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.usage());
            self.cached_input_tokens = usage.cached_tokens();
        }
        if self.model.is_none() {
            self.model.clone_from(&chunk.model);
        }
        let choice = chunk.choices.first()?;
        if let Some(reason) = &choice.finish_reason {
            self.finish_reason = Some(reason.clone());
        }
        let mut delta = Map::new();
        if let Some(text) = choice.delta.content.as_ref().filter(|t| !t.is_empty()) {
            self.content.push_str(text);
            delta.insert("content".into(), Value::String(text.clone()));
        }
        if let Some(pieces) = &choice.delta.tool_calls {
            self.add_tool_call_pieces(pieces);
            delta.insert("tool_calls".into(), json!(pieces));
        }
        (!delta.is_empty()).then_some(Value::Object(delta))
    }

    /// Adds a delta as its trace event has it (what [`Assembly::add`]
    /// returned), to rebuild what a call had streamed.
    pub fn add_traced(&mut self, delta: &Value) {
        if let Some(text) = delta.get("content").and_then(Value::as_str) {
            self.content.push_str(text);
        }
        let pieces = delta
            .get("tool_calls")
            .and_then(|pieces| serde_json::from_value::<Vec<ToolCallDelta>>(pieces.clone()).ok());
        if let Some(pieces) = pieces {
            self.add_tool_call_pieces(&pieces);
        }
    }

    fn add_tool_call_pieces(&mut self, pieces: &[ToolCallDelta]) {
        for piece in pieces {
            let call = self
                .tool_calls
                .entry(piece.index)
                .or_insert_with(|| ToolCall::function("", "", ""));
            if let Some(id) = &piece.id {
                call.id.clone_from(id);
            }
            if let Some(function) = &piece.function {
                if let Some(name) = &function.name {
                    call.function.name.push_str(name);
                }
                if let Some(arguments) = &function.arguments {
                    call.function.arguments.push_str(arguments);
                }
            }
        }
    }
}

/// A streamed call's recorded response: what it said, however it ended.
pub fn recorded_response(
    content: &str,
    tool_calls: &[ToolCall],
    usage: Option<&Usage>,
    finish_reason: Option<&str>,
) -> Value {
    json!({
        "content": content,
        "tool_calls": tool_calls,
        "usage": usage,
        "finish_reason": finish_reason,
    })
}
