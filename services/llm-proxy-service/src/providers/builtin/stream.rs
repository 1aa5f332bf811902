//! The builtin model's answer as a stream of chunks, paced like a real
//! provider's.

use chrono::Utc;
use confab_protocol::openai::{
    ChatCompletionChunk, ChunkChoice, Delta, FunctionCallDelta, ToolCallDelta, Usage,
};
use futures_util::StreamExt;

use super::Builtin;
use super::answer::Answer;
use crate::providers::{Start, UpstreamError};

impl Builtin {
    /// Streams `answer`, waiting before the first chunk and between chunks;
    /// an answer that fails ends in a broken stream after its text.
    pub(super) fn stream(&self, id: &str, model: &str, answer: Answer) -> Start {
        let mut chunks: Vec<Result<String, UpstreamError>> = stream_chunks(id, model, &answer)
            .into_iter()
            .map(Ok)
            .collect();
        if let Some(message) = answer.failure {
            chunks.push(Err(UpstreamError::Broken(message)));
        }
        let (first, between) = (self.first_chunk_delay, self.chunk_delay);
        let stream = futures_util::stream::iter(chunks.into_iter().enumerate()).then(
            move |(i, chunk)| async move {
                let delay = if i == 0 { first } else { between };
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                chunk
            },
        );
        Start::Stream(Box::pin(stream))
    }
}

/// The chunks of a streamed answer: the role, one per token, the tool calls
/// (each in two pieces, as real models split them), the finish, the usage;
/// or, for an answer that fails, the role and the text's tokens only.
pub(super) fn stream_chunks(id: &str, model: &str, answer: &Answer) -> Vec<String> {
    let created = Utc::now().timestamp();
    let chunk = |delta: Delta, finish: Option<&str>, usage: Option<Usage>| {
        let chunk = ChatCompletionChunk {
            id: id.to_owned(),
            object: "chat.completion.chunk".into(),
            created,
            model: model.to_owned(),
            choices: if usage.is_some() {
                Vec::new()
            } else {
                vec![ChunkChoice {
                    index: 0,
                    delta,
                    finish_reason: finish.map(str::to_owned),
                }]
            },
            usage,
        };
        serde_json::to_string(&chunk).unwrap_or_default()
    };
    let mut chunks = vec![chunk(Delta::assistant_start(), None, None)];
    for token in &answer.tokens {
        chunks.push(chunk(Delta::text(token.clone()), None, None));
    }
    if answer.failure.is_some() {
        return chunks;
    }
    for (index, call) in answer.tool_calls.iter().enumerate() {
        let arguments = &call.function.arguments;
        let split = arguments
            .char_indices()
            .nth(arguments.chars().count() / 2)
            .map_or(0, |(i, _)| i);
        let pieces = [
            ToolCallDelta {
                index: index as u32,
                id: Some(call.id.clone()),
                kind: Some("function".into()),
                function: Some(FunctionCallDelta {
                    name: Some(call.function.name.clone()),
                    arguments: Some(arguments[..split].to_owned()),
                }),
            },
            ToolCallDelta {
                index: index as u32,
                id: None,
                kind: None,
                function: Some(FunctionCallDelta {
                    name: None,
                    arguments: Some(arguments[split..].to_owned()),
                }),
            },
        ];
        for piece in pieces {
            chunks.push(chunk(
                Delta {
                    tool_calls: Some(vec![piece]),
                    ..Delta::default()
                },
                None,
                None,
            ));
        }
    }
    chunks.push(chunk(Delta::default(), Some(answer.finish_reason()), None));
    chunks.push(chunk(Delta::default(), None, Some(answer.usage)));
    chunks
}
