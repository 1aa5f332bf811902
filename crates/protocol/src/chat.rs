//! Chat resources and the native SSE events of a turn (DESIGN §7).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Token usage of one assistant message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageRole {
    User,
    Assistant,
    System,
}

impl MessageRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageRole::User => "user",
            MessageRole::Assistant => "assistant",
            MessageRole::System => "system",
        }
    }
}

/// How a message ended. A user message is always `complete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Complete,
    Incomplete,
    Canceled,
    Failed,
    Interrupted,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Complete => "complete",
            MessageStatus::Incomplete => "incomplete",
            MessageStatus::Canceled => "canceled",
            MessageStatus::Failed => "failed",
            MessageStatus::Interrupted => "interrupted",
        }
    }
}

/// A conversation as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub title: String,
    pub agent_id: String,
    pub message_count: i64,
    pub tree_version: i64,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<Value>,
}

/// A message as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    pub seq: i64,
    pub role: MessageRole,
    pub content: String,
    pub content_blocks: Value,
    pub status: MessageStatus,
    pub token_usage: Option<TokenUsage>,
    pub agent_task_id: Option<String>,
    pub created_at: String,
}

/// `POST /chat/conversations`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateConversation {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
}

/// `PATCH /chat/conversations/{id}`: the title is all an owner may change;
/// any other field is refused rather than silently ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameConversation {
    pub title: String,
}

/// `GET /chat/conversations/{id}/history`: the conversation with its tree
/// and its newest messages, oldest first. `next_cursor` is the `before_seq`
/// that fetches older ones from `…/messages` when the history was capped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationHistory {
    pub conversation: Conversation,
    pub messages: Vec<Message>,
    pub next_cursor: Option<String>,
}

/// Body of a turn: `{"message":"…"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendMessage {
    pub message: String,
}

/// `POST /chat/unified`: a turn that creates its conversation on the first
/// message and picks its agent when not told.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UnifiedRequest {
    pub message: String,
    #[serde(default)]
    pub conversation_id: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub stream: bool,
}

/// Every list endpoint answers `{"items":[…],"next_cursor"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventError {
    pub code: String,
    pub message: String,
}

/// One native SSE event of a turn. Serialised as one JSON object per `data:`
/// line with no `event:` name, so `EventSource.onmessage` sees them all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatEvent {
    MessageStart {
        conversation_id: String,
        user_message_id: String,
        message_id: String,
        agent_id: String,
    },
    Text {
        text: String,
    },
    Reasoning {
        text: String,
    },
    Data {
        data: Value,
    },
    TreeUpdate {
        patch: Value,
        version: i64,
    },
    Retry {
        attempt: u32,
        max_attempts: u32,
        delay_ms: u64,
    },
    Error {
        error: EventError,
    },
    Done {
        message_id: String,
        conversation_id: String,
        status: MessageStatus,
        token_usage: Option<TokenUsage>,
    },
}

impl ChatEvent {
    /// Encodes the event as one SSE frame whose `id:` is the turn's sequence number.
    pub fn to_sse(&self, id: u64) -> String {
        // Serialising a value made only of strings, numbers and JSON values cannot fail.
        let data = serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"));
        format!("id: {id}\ndata: {data}\n\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_with_a_type_tag_and_snake_case_names() {
        let event = ChatEvent::MessageStart {
            conversation_id: "conv-1".into(),
            user_message_id: "msg-1".into(),
            message_id: "msg-2".into(),
            agent_id: "math".into(),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "message_start");
        assert_eq!(json["user_message_id"], "msg-1");
        let sse = ChatEvent::Text { text: "hi".into() }.to_sse(3);
        assert_eq!(sse, "id: 3\ndata: {\"type\":\"text\",\"text\":\"hi\"}\n\n");
    }

    #[test]
    fn done_event_round_trips() {
        let event = ChatEvent::Done {
            message_id: "msg-2".into(),
            conversation_id: "conv-1".into(),
            status: MessageStatus::Complete,
            token_usage: Some(TokenUsage {
                input_tokens: 3,
                output_tokens: 5,
            }),
        };
        let text = serde_json::to_string(&event).unwrap();
        let back: ChatEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(back, event);
    }
}
