//! A turn as OpenAI chat-completions objects (DESIGN §7): a finished reply
//! as one `chat.completion`, or the turn's event log as
//! `chat.completion.chunk` SSE ending in `data: [DONE]`. Every object has
//! the extra top-level `conversation_id` and `message_id`.
//!
//! `finish_reason` is always `"stop"`: a reply that did not complete (the
//! agent failed mid-way, the turn was canceled) still ends the stream
//! cleanly, so any client keeps the partial text; how it ended is the extra
//! top-level `status` of the `chat.completion` and of the last chunk
//! (`complete`, `incomplete`, `canceled`, `failed`), as on the message.
//!
//! `usage` has OpenAI's three counts and, when the agent reported what the
//! reply cost, an extra `cost` (currency units), as llm-proxy-service adds
//! to its own; OpenAI's SDKs keep fields they do not know.

use std::convert::Infallible;

use actix_web::HttpResponse;
use actix_web::web::Bytes;
use confab_protocol::chat::{ChatEvent, Cost, Message, MessageStatus, MessageUsage};
use confab_protocol::ids::{AgentId, ConversationId, MessageId};
use confab_protocol::openai::{
    ChatCompletion, ChatCompletionChunk, ChatMessage, Choice, ChunkChoice, Delta, Usage,
};
use futures_util::{Stream, StreamExt, stream};
use serde::Serialize;
use serde_json::{Value, json};

const FINISH_REASON: &str = "stop";

/// What names the completion: its conversation, reply and agent.
#[derive(Debug, Clone)]
pub struct Completion {
    pub conversation_id: String,
    pub message_id: String,
    /// The agent id.
    pub model: String,
    /// Unix seconds.
    pub created: i64,
}

impl Completion {
    pub fn new(conversation_id: ConversationId, message_id: MessageId, model: AgentId) -> Self {
        Self {
            conversation_id: conversation_id.into_inner(),
            message_id: message_id.into_inner(),
            model: model.into_inner(),
            created: chrono::Utc::now().timestamp(),
        }
    }

    fn id(&self) -> String {
        format!("chatcmpl-{}", self.message_id)
    }

    /// `object` as JSON with the extra top-level fields, and the reply's
    /// `cost` in its `usage` when known.
    fn with_ids(
        &self,
        object: &impl Serialize,
        status: Option<MessageStatus>,
        cost: Option<Cost>,
    ) -> Value {
        let mut value = serde_json::to_value(object).unwrap_or_else(|_| json!({}));
        if let (Some(cost), Some(usage)) =
            (cost, value.get_mut("usage").and_then(Value::as_object_mut))
        {
            usage.insert("cost".into(), json!(cost));
        }
        if let Some(fields) = value.as_object_mut() {
            fields.insert("conversation_id".into(), json!(self.conversation_id));
            fields.insert("message_id".into(), json!(self.message_id));
            if let Some(status) = status {
                fields.insert("status".into(), json!(status.as_str()));
            }
        }
        value
    }

    /// The finished `reply` as a `chat.completion`.
    pub fn completion(&self, reply: &Message) -> Value {
        let completion = ChatCompletion {
            id: self.id(),
            object: "chat.completion".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![Choice {
                index: 0,
                message: ChatMessage::new("assistant", reply.content.clone()),
                finish_reason: Some(FINISH_REASON.into()),
            }],
            usage: Some(usage(reply.token_usage)),
        };
        self.with_ids(
            &completion,
            Some(reply.status),
            reply.token_usage.and_then(|u| u.cost),
        )
    }

    fn chunk(
        &self,
        delta: Delta,
        finish_reason: Option<&str>,
        usage: Option<Usage>,
    ) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish_reason.map(str::to_owned),
            }],
            usage,
        }
    }

    fn frame(
        &self,
        chunk: &ChatCompletionChunk,
        status: Option<MessageStatus>,
        cost: Option<Cost>,
    ) -> Bytes {
        Bytes::from(format!("data: {}\n\n", self.with_ids(chunk, status, cost)))
    }

    /// The turn's events as chunks: the assistant role first, one chunk per
    /// `text` event, a last one with `finish_reason` (and `usage` when
    /// `include_usage`), then `data: [DONE]`. Other events have no OpenAI
    /// form and are left out.
    pub fn chunks(
        self,
        events: impl Stream<Item = (u64, ChatEvent)> + 'static,
        include_usage: bool,
    ) -> impl Stream<Item = Bytes> + 'static {
        let role = self.frame(
            &self.chunk(Delta::assistant_start(), None, None),
            None,
            None,
        );
        let body = events.filter_map(move |(_, event)| {
            let frame = match event {
                ChatEvent::Text { text } => {
                    Some(self.frame(&self.chunk(Delta::text(text), None, None), None, None))
                }
                ChatEvent::Done {
                    status,
                    token_usage,
                    ..
                } => Some(self.frame(
                    &self.chunk(
                        Delta::default(),
                        Some(FINISH_REASON),
                        include_usage.then(|| usage(token_usage)),
                    ),
                    Some(status),
                    token_usage.and_then(|u| u.cost),
                )),
                _ => None,
            };
            std::future::ready(frame)
        });
        stream::once(std::future::ready(role))
            .chain(body)
            .chain(stream::once(std::future::ready(Bytes::from_static(
                b"data: [DONE]\n\n",
            ))))
    }
}

fn usage(token_usage: Option<MessageUsage>) -> Usage {
    let tokens = token_usage.unwrap_or_default();
    Usage::new(tokens.input_tokens, tokens.output_tokens)
}

/// Chunks as an SSE response.
pub fn sse(frames: impl Stream<Item = Bytes> + 'static) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        // Tells a buffering reverse proxy (nginx) to pass events on at once.
        .insert_header(("x-accel-buffering", "no"))
        .streaming(frames.map(Ok::<_, Infallible>))
}
