//! Rows of chat-service's tables and their API shapes.

use chrono::{NaiveDateTime, SecondsFormat};
use confab_protocol::chat::{
    self, ConversationUsage, Cost, MessageRole, MessageStatus, MessageUsage,
};
use confab_protocol::ids::{AgentId, ConversationId, MessageId, UserId};
use diesel::prelude::*;

use super::schema::{conversations, messages};

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = conversations)]
pub struct ConversationRow {
    pub id: ConversationId,
    pub user_id: UserId,
    pub title: String,
    pub agent_id: AgentId,
    pub message_count: i64,
    pub tree: String,
    pub tree_version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Totals over the finished replies (see [`ConversationUsage`]), the
    /// cost in nano-units.
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_nanos: i64,
    pub messages_without_cost: i64,
}

impl ConversationRow {
    /// The API shape; `with_tree` when the conversation is read alone.
    pub fn to_api(&self, with_tree: bool) -> chat::Conversation {
        chat::Conversation {
            id: self.id.to_string(),
            title: self.title.clone(),
            agent_id: self.agent_id.to_string(),
            message_count: self.message_count,
            tree_version: self.tree_version,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
            usage: ConversationUsage {
                input_tokens: u64::try_from(self.input_tokens).unwrap_or_default(),
                output_tokens: u64::try_from(self.output_tokens).unwrap_or_default(),
                cost: Cost::from_nanos(self.cost_nanos),
                messages_without_cost: u64::try_from(self.messages_without_cost)
                    .unwrap_or_default(),
            },
            tree: with_tree.then(|| serde_json::from_str(&self.tree).unwrap_or_default()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = messages)]
pub struct MessageRow {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub user_id: UserId,
    pub seq: i64,
    pub role: String,
    pub content: String,
    pub content_blocks: String,
    pub status: String,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub agent_task_id: Option<String>,
    pub created_at: NaiveDateTime,
    /// A reply whose turn is still running (or was cut off by a crash).
    pub in_flight: bool,
    /// What the reply cost, as its agent reported it, in nano-units.
    pub cost_nanos: Option<i64>,
}

impl MessageRow {
    pub fn to_api(&self) -> chat::Message {
        chat::Message {
            id: self.id.to_string(),
            conversation_id: self.conversation_id.to_string(),
            seq: self.seq,
            role: match self.role.as_str() {
                "assistant" => MessageRole::Assistant,
                "system" => MessageRole::System,
                _ => MessageRole::User,
            },
            content: self.content.clone(),
            content_blocks: serde_json::from_str(&self.content_blocks).unwrap_or_default(),
            status: match self.status.as_str() {
                "incomplete" => MessageStatus::Incomplete,
                "canceled" => MessageStatus::Canceled,
                "failed" => MessageStatus::Failed,
                "interrupted" => MessageStatus::Interrupted,
                _ => MessageStatus::Complete,
            },
            token_usage: match (self.input_tokens, self.output_tokens) {
                (Some(i), Some(o)) => Some(MessageUsage {
                    input_tokens: u64::try_from(i).unwrap_or_default(),
                    output_tokens: u64::try_from(o).unwrap_or_default(),
                    cost: self.cost_nanos.map(Cost::from_nanos),
                }),
                _ => None,
            },
            agent_task_id: self.agent_task_id.clone(),
            created_at: rfc3339(self.created_at),
        }
    }
}

/// A message about to be appended; its `seq` is given by the store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: MessageId,
    pub role: MessageRole,
    pub content: String,
    pub content_blocks: serde_json::Value,
    pub status: MessageStatus,
    pub token_usage: Option<MessageUsage>,
    pub agent_task_id: Option<String>,
    /// A reply just begun, finished later with [`super::messages::finish`].
    pub in_flight: bool,
}

/// Timestamps are stored as UTC without zone and shown as RFC 3339 with `Z`.
pub fn rfc3339(ts: NaiveDateTime) -> String {
    ts.and_utc().to_rfc3339_opts(SecondsFormat::Millis, true)
}
