//! The turn's one assistant message: built up from the agent's events, then
//! saved when the turn ends, with the `error` event that says why a reply
//! fell short.

use confab_protocol::a2a::TaskState;
use confab_protocol::chat::{ChatEvent, EventError, MessageStatus, MessageUsage};
use serde_json::{Value, json};
use tracing::Instrument;

use super::turn::{Emitter, Turn};
use crate::store::messages::{self, Finished};

/// The assistant message as it builds up during a turn.
#[derive(Default)]
pub(super) struct Reply {
    pub(super) content: String,
    /// The agent's data parts, in order.
    pub(super) data: Vec<Value>,
    pub(super) task_id: Option<String>,
    pub(super) usage: Option<MessageUsage>,
    /// Why the turn did not complete, if it did not.
    pub(super) failure: Option<String>,
    pub(super) final_state: Option<TaskState>,
    pub(super) canceled: bool,
    /// Taken over from an instance that died, and the agent's task could
    /// not be found again.
    pub(super) interrupted: bool,
}

impl Reply {
    /// The reply as far as the `earlier` events of its turn built it (a
    /// turn taken over), its agent's task `task_id`.
    pub(super) fn rebuilt(earlier: &[ChatEvent], task_id: Option<String>) -> Self {
        let mut reply = Self {
            task_id,
            ..Self::default()
        };
        for event in earlier {
            match event {
                ChatEvent::Text { text } => reply.content.push_str(text),
                ChatEvent::Data { data } => reply.data.push(data.clone()),
                // A tree patch from the agent, applied already: counted
                // among its data parts, so a snapshot does not apply it again.
                ChatEvent::TreeUpdate { patch, .. } => {
                    reply.data.push(json!({ "tree_patch": patch }));
                }
                _ => {}
            }
        }
        reply
    }

    pub(super) fn text(&mut self, text: String, out: &Emitter) {
        self.content.push_str(&text);
        out.emit(ChatEvent::Text { text });
    }

    fn status(&self) -> MessageStatus {
        let nothing = self.content.is_empty() && self.data.is_empty();
        match (&self.failure, self.final_state) {
            (Some(_), _) if self.interrupted => MessageStatus::Interrupted,
            (None, _) => MessageStatus::Complete,
            (Some(_), Some(TaskState::Canceled)) => MessageStatus::Canceled,
            (Some(_), _) if self.canceled => MessageStatus::Canceled,
            (Some(_), _) if nothing => MessageStatus::Failed,
            (Some(_), _) => MessageStatus::Incomplete,
        }
    }

    fn finished(self, status: MessageStatus) -> Finished {
        let mut blocks = Vec::new();
        if !self.content.is_empty() {
            blocks.push(json!({"type": "text", "text": self.content}));
        }
        blocks.extend(
            self.data
                .into_iter()
                .map(|data| json!({"type": "data", "data": data})),
        );
        Finished {
            content: self.content,
            content_blocks: Value::Array(blocks),
            status,
            token_usage: self.usage,
            agent_task_id: self.task_id,
        }
    }
}

impl Turn {
    /// Says why the reply fell short, unless the client canceled it, and
    /// finishes its row; the status `done` reports, `failed` when the row
    /// could not be saved.
    pub(super) async fn save(&self, reply: Reply, out: &Emitter) -> MessageStatus {
        let status = reply.status();
        if let (Some(reason), false) = (&reply.failure, status == MessageStatus::Canceled) {
            tracing::warn!(conversation_id = %self.conversation_id, agent = %self.agent_id, reason, "turn did not complete");
            out.emit(ChatEvent::Error {
                error: EventError {
                    code: match status {
                        MessageStatus::Failed => "agent_failed",
                        MessageStatus::Interrupted => "turn_interrupted",
                        _ => "agent_incomplete",
                    }
                    .into(),
                    message: reason.clone(),
                },
            });
        }

        let persisted = messages::finish(
            &self.db,
            &self.user_id,
            &self.conversation_id,
            &self.reply.id,
            reply.finished(status),
        )
        .instrument(self.db.span("UPDATE", "messages"))
        .await;
        match persisted {
            Ok(true) => status,
            Ok(false) => {
                // The conversation was deleted while the turn ran.
                tracing::info!(conversation_id = %self.conversation_id, "conversation gone before the reply was saved");
                status
            }
            Err(err) => {
                tracing::error!(conversation_id = %self.conversation_id, error = %err, "saving the assistant message failed");
                out.emit(ChatEvent::Error {
                    error: EventError {
                        code: "persist_failed".into(),
                        message: "the reply could not be saved".into(),
                    },
                });
                MessageStatus::Failed
            }
        }
    }
}
