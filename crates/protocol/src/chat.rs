//! Chat resources and the native SSE events of a turn (DESIGN §7).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An amount of money in the currency llm-proxy-service prices calls in.
///
/// Kept as whole nano-units (1e-9 of the currency) so that sums over many
/// calls and messages are exact, whatever their number: adding floats would
/// drift. On the wire it is a JSON number of currency units (`0.000369`),
/// as llm-proxy-service reports `usage.cost`; a number with more than nine
/// decimals is rounded to the nearest nano-unit when read.
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(value_type = f64, minimum = 0.0)
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cost(i64);

impl Cost {
    pub const ZERO: Cost = Cost(0);

    /// Nano-units in a currency unit.
    const NANOS_PER_UNIT: f64 = 1e9;

    pub fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// The amount in nano-units, as it is stored.
    pub fn nanos(self) -> i64 {
        self.0
    }

    /// `units` of the currency, to the nearest nano-unit; `None` for a
    /// negative, infinite or not-a-number amount, or one too large to hold.
    pub fn from_units(units: f64) -> Option<Self> {
        let nanos = (units * Self::NANOS_PER_UNIT).round();
        // i64::MAX as f64 rounds up to 2^63, itself out of range.
        let in_range = nanos.is_finite() && nanos >= 0.0 && nanos < i64::MAX as f64;
        // A whole number within i64 when in range: the cast is exact (and
        // saturates, unused, when not).
        in_range.then_some(Self(nanos as i64))
    }

    /// The amount in currency units, as the wire shows it.
    pub fn units(self) -> f64 {
        // Exact below 2^53 nano-units (9 million currency units).
        self.0 as f64 / Self::NANOS_PER_UNIT
    }

    /// The sum, held at the largest amount rather than wrapping.
    pub fn saturating_add(self, other: Cost) -> Cost {
        Cost(self.0.saturating_add(other.0))
    }
}

impl Serialize for Cost {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.units())
    }
}

impl<'de> Deserialize<'de> for Cost {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let units = f64::deserialize(deserializer)?;
        Cost::from_units(units)
            .ok_or_else(|| serde::de::Error::custom(format!("{units} is not an amount of money")))
    }
}

/// What one assistant message used: its tokens, as the agent reported
/// them, and what they cost, `cost` absent when the agent did not report
/// one (an agent that is not Confab's, or one whose model has no known
/// price). The `token_usage` of a message, of `done`, of every shape that
/// shows one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// A cost of the wrong shape (a text, a negative number) reads as
    /// unknown: agents are third-party programs too.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "cost_or_none"
    )]
    pub cost: Option<Cost>,
}

impl MessageUsage {
    /// Tokens whose cost is not known.
    pub fn tokens(input_tokens: u64, output_tokens: u64) -> Self {
        Self {
            input_tokens,
            output_tokens,
            cost: None,
        }
    }
}

fn cost_or_none<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Cost>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(Option::<Cost>::deserialize(value).ok().flatten())
}

/// A conversation's running totals over its finished assistant messages
/// (`"usage"` of a conversation). `cost` is the exact sum of the costs that
/// are known; `messages_without_cost` counts the replies whose cost is not
/// (no usage reported, or no cost in it: a third-party agent, a turn that
/// failed or was canceled before the agent reported), so a client can tell
/// a complete total (0) from a lower bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConversationUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost: Cost,
    pub messages_without_cost: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Conversation {
    pub id: String,
    pub title: String,
    pub agent_id: String,
    pub message_count: i64,
    pub tree_version: i64,
    pub created_at: String,
    pub updated_at: String,
    /// Totals over the conversation's replies.
    #[serde(default)]
    pub usage: ConversationUsage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<Value>,
}

/// A message as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    pub seq: i64,
    pub role: MessageRole,
    pub content: String,
    pub content_blocks: Value,
    pub status: MessageStatus,
    pub token_usage: Option<MessageUsage>,
    pub agent_task_id: Option<String>,
    pub created_at: String,
}

/// `POST /chat/conversations`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateConversation {
    /// At most 200 characters; blank or absent: "New conversation".
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub title: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
}

/// `PATCH /chat/conversations/{id}`: the title is all an owner may change;
/// any other field is refused rather than silently ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RenameConversation {
    /// Not blank; at most 200 characters.
    #[cfg_attr(feature = "openapi", schema(pattern = r"\S", max_length = 200))]
    pub title: String,
}

/// `GET /chat/conversations/{id}/history`: the conversation with its tree
/// and its newest messages, oldest first. `next_cursor` is the `before_seq`
/// that fetches older ones from `…/messages` when the history was capped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConversationHistory {
    pub conversation: Conversation,
    pub messages: Vec<Message>,
    pub next_cursor: Option<String>,
}

/// Body of a turn: `{"message":"…"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendMessage {
    /// Not blank; at most `chat.max_message_chars` (10,000 by default).
    #[cfg_attr(feature = "openapi", schema(pattern = r"\S"))]
    pub message: String,
}

/// `POST /chat/unified`: a turn that creates its conversation on the first
/// message and picks its agent when not told.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnifiedRequest {
    /// Not blank; at most `chat.max_message_chars` (10,000 by default).
    #[cfg_attr(feature = "openapi", schema(pattern = r"\S"))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventError {
    pub code: String,
    pub message: String,
}

/// One native SSE event of a turn. Serialised as one JSON object per `data:`
/// line with no `event:` name, so `EventSource.onmessage` sees them all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
        token_usage: Option<MessageUsage>,
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
            token_usage: Some(MessageUsage {
                input_tokens: 3,
                output_tokens: 5,
                cost: Cost::from_units(0.000_042),
            }),
        };
        let text = serde_json::to_string(&event).unwrap();
        let back: ChatEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn a_cost_is_exact_in_nano_units_and_a_number_of_units_on_the_wire() {
        let call = Cost::from_units(0.000_123).unwrap();
        assert_eq!(call.nanos(), 123_000);
        let sum = (0..3).fold(Cost::ZERO, |sum, _| sum.saturating_add(call));
        assert_eq!(serde_json::to_string(&sum).unwrap(), "0.000369");
        let read: Cost = serde_json::from_str("0.000369").unwrap();
        assert_eq!(read, sum);
        assert_eq!(
            Cost::from_units(1.5e-10).unwrap().nanos(),
            0,
            "below a nano-unit"
        );
        for bad in [-0.01, f64::NAN, f64::INFINITY, 1e300] {
            assert_eq!(Cost::from_units(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_message_usage_without_a_cost_has_the_shape_it_always_had() {
        let usage = MessageUsage::tokens(3, 5);
        assert_eq!(
            serde_json::to_value(usage).unwrap(),
            serde_json::json!({"input_tokens": 3, "output_tokens": 5})
        );
        let priced = MessageUsage {
            cost: Some(Cost::ZERO),
            ..usage
        };
        assert_eq!(
            serde_json::to_value(priced).unwrap(),
            serde_json::json!({"input_tokens": 3, "output_tokens": 5, "cost": 0.0})
        );
        for unreadable in [
            serde_json::json!("0.1"),
            serde_json::json!(-1),
            serde_json::json!(null),
        ] {
            let read: MessageUsage = serde_json::from_value(serde_json::json!({
                "input_tokens": 3, "output_tokens": 5, "cost": unreadable,
            }))
            .unwrap();
            assert_eq!(read, usage);
        }
    }
}
