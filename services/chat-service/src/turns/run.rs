//! A turn's task from `message_start` to `done`: it reaches the agent
//! ([`super::call`]), follows the agent's task ([`super::follow`]), saves the
//! one reply ([`super::reply`]) and frees the conversation.

use std::sync::Arc;

use confab_kit::db::Db;
use confab_protocol::chat::ChatEvent;
use serde_json::Value;

use super::call::RetryPolicy;
use super::in_flight::TurnClaim;
use super::log::TurnLog;
use super::reply::Reply;
use crate::a2a::client::{A2aClient, A2aError, Trace};
use crate::a2a::registry::Registry;
use crate::domain::MessageText;
use crate::store::models::MessageRow;
use crate::tree_patch::TreeLimits;

/// Everything a turn needs, gathered by the handler after validation.
pub struct Turn {
    pub db: Db,
    pub client: A2aClient,
    pub user_id: String,
    pub conversation_id: String,
    pub agent_id: String,
    pub agents: Arc<Registry>,
    /// This turn's hold on its conversation, and its cancel signal.
    pub claim: TurnClaim,
    pub user_message: MessageRow,
    /// The assistant message begun for this turn (in flight).
    pub reply: MessageRow,
    pub text: MessageText,
    /// Earlier messages, oldest first, sent to the agent as context.
    pub history: Vec<MessageRow>,
    /// Request id and trace context, passed on to the agent.
    pub trace: Trace,
    /// The conversation's tree document, for agents that edit it.
    pub tree: Value,
    /// What an agent's `tree_patch` may do to the tree.
    pub tree_limits: TreeLimits,
    pub retry: RetryPolicy,
}

/// Starts the turn; its events are read from the log it returns.
pub fn start(turn: Turn) -> Arc<TurnLog> {
    let log = turn.claim.log.clone();
    tokio::spawn(turn.run());
    log
}

/// Where a turn's events go.
pub(super) struct Emitter {
    log: Arc<TurnLog>,
}

impl Emitter {
    pub(super) fn emit(&self, event: ChatEvent) {
        self.log.push(event);
    }
}

impl Turn {
    async fn run(self) {
        let in_flight = metrics::gauge!("chat_turns_in_flight");
        in_flight.increment(1);
        let log = self.claim.log.clone();
        self.run_to_end().await;
        log.end();
        in_flight.decrement(1);
    }

    async fn run_to_end(self) {
        let out = Emitter {
            log: self.claim.log.clone(),
        };
        let assistant_id = self.reply.id.clone();
        out.emit(ChatEvent::MessageStart {
            conversation_id: self.conversation_id.clone(),
            user_message_id: self.user_message.id.clone(),
            message_id: assistant_id.clone(),
            agent_id: self.agent_id.clone(),
        });

        let mut reply = Reply::default();
        match self.connect(&out).await {
            Err(err) => {
                reply.canceled = matches!(err, A2aError::Canceled);
                reply.failure = Some(err.to_string());
            }
            Ok((agent, stream)) => self.follow(&agent, stream, &mut reply, &out).await,
        }
        let usage = reply.usage;
        let status = self.save(reply, &out).await;
        // The conversation is free for the next turn before `done` goes
        // out, so a client that starts one as soon as it reads `done` is
        // never refused.
        drop(self.claim);
        out.emit(ChatEvent::Done {
            message_id: assistant_id,
            conversation_id: self.conversation_id.clone(),
            status,
            token_usage: usage,
        });
    }
}
