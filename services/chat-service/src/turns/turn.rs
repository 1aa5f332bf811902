//! What a turn is made of: everything its task needs, gathered by the
//! handler after validation, and where its events go.

use std::sync::Arc;

use confab_kit::db::Db;
use confab_protocol::chat::ChatEvent;
use confab_protocol::ids::{AgentId, ConversationId, UserId};
use serde_json::Value;

use super::in_flight::TurnClaim;
use super::log::TurnLog;
use super::retry::RetryPolicy;
use crate::a2a::client::{A2aClient, Trace};
use crate::a2a::registry::Registry;
use crate::domain::MessageText;
use crate::store::models::MessageRow;
use crate::tree_patch::TreeLimits;

/// Everything a turn needs, gathered by the handler after validation.
pub struct Turn {
    pub db: Db,
    pub client: A2aClient,
    pub user_id: UserId,
    /// The personal API key the turn was started with, for the agent to
    /// pass on with its LLM calls; `None` for a turn taken over (its
    /// request went to the agent before).
    pub api_key_id: Option<String>,
    pub conversation_id: ConversationId,
    pub agent_id: AgentId,
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

/// Where a turn's events go.
pub(super) struct Emitter {
    log: Arc<TurnLog>,
}

impl Emitter {
    pub(super) fn new(log: Arc<TurnLog>) -> Self {
        Self { log }
    }

    pub(super) fn emit(&self, event: ChatEvent) {
        self.log.push(event);
    }
}
