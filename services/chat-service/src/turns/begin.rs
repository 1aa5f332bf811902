//! Starting a turn, for every way a client can ask for one (SSE, a plain
//! POST, unified, OpenAI, both WebSocket dialects): the user's permit from
//! their turn budget ([`super::budget`]), validation, the conversation's
//! claim, the user message and the reply row written together, then the
//! turn's task; the sockets on the conversation hear that it started.

use std::sync::Arc;
use tracing::Instrument;

use confab_kit::db::Db;
use confab_protocol::chat::{MessageRole, MessageStatus};
use confab_protocol::ids::{ConversationId, MessageId};
use serde_json::json;

use super::budget::TurnPermit;
use super::events::TurnEvents;
use super::in_flight::InFlight;
use super::log::TurnLog;
use super::notices::{Notice, Notices};
use super::{RetryPolicy, Turn, start};
use crate::a2a::client::{A2aClient, Trace};
use crate::a2a::registry::Registry;
use crate::domain::MessageText;
use crate::error::ChatError;
use crate::store::models::NewMessage;
use crate::store::{conversations, messages};
use crate::tree_patch::TreeLimits;

/// What starting a turn takes from the service, lent by its state.
#[derive(Clone, Copy)]
pub struct TurnServices<'a> {
    pub db: &'a Db,
    /// Where the turn's events go (see [`super::log`]).
    pub events: &'a Arc<TurnEvents>,
    pub agents: &'a Arc<Registry>,
    pub client: &'a A2aClient,
    pub in_flight: &'a Arc<InFlight>,
    pub notices: &'a Notices,
    /// Earlier messages sent to the agent with the prompt, at most.
    pub history_messages: i64,
    pub tree_limits: TreeLimits,
    pub retry: RetryPolicy,
}

/// A turn that has started.
pub struct Started {
    pub log: Arc<TurnLog>,
    pub reply_id: MessageId,
    /// The reply's place in the conversation (its `seq`).
    pub reply_seq: i64,
}

/// Starts a turn of the permit's user in `conversation_id` (the permit,
/// from [`super::budget::TurnBudget::admit`], is how every entry point
/// shares one budget). 404 for a conversation that is not theirs, 409
/// while another turn runs in it, 422 when its agent is not registered (any
/// more). Nothing is written when it is refused.
pub async fn begin(
    services: TurnServices<'_>,
    permit: TurnPermit,
    conversation_id: &ConversationId,
    text: MessageText,
    trace: Trace,
) -> Result<Started, ChatError> {
    let user_id = permit.user_id().clone();
    let user_id = &user_id;
    let api_key_id = permit.api_key_id().map(str::to_owned);
    let conversation = conversations::owned(services.db, user_id, conversation_id).await?;
    if !services.agents.contains(conversation.agent_id.as_str()) {
        return Err(ChatError::AgentGone(conversation.agent_id.into_inner()));
    }
    // The reply's id is known to the claim before the reply is written, so
    // whoever finds the reply row in flight also finds its turn's log.
    let reply_id = MessageId::from(confab_kit::ids::new_id("msg"));
    let log = TurnLog::open(services.events, conversation_id, &reply_id);
    let claim = services
        .in_flight
        .begin(conversation_id, &reply_id, permit, log)
        .await?
        .ok_or(ChatError::TurnInFlight)?;
    let history = messages::page(
        services.db,
        user_id,
        conversation_id,
        None,
        services.history_messages,
    )
    .await?;
    let message = |id, role, content: &str, status, in_flight| NewMessage {
        id,
        role,
        content: content.to_owned(),
        content_blocks: if content.is_empty() {
            json!([])
        } else {
            json!([{"type": "text", "text": content}])
        },
        status,
        token_usage: None,
        agent_task_id: None,
        in_flight,
    };
    let rows = messages::append_all(
        services.db,
        user_id,
        conversation_id,
        vec![
            message(
                confab_kit::ids::new_id("msg").into(),
                MessageRole::User,
                text.as_str(),
                MessageStatus::Complete,
                false,
            ),
            // The reply, in flight until the turn finishes it; `incomplete`
            // is what it would be if nothing more were ever written.
            message(
                reply_id,
                MessageRole::Assistant,
                "",
                MessageStatus::Incomplete,
                true,
            ),
        ],
    )
    .instrument(services.db.span("INSERT", "messages"))
    .await?
    .ok_or(ChatError::ConversationNotFound)?;
    let mut rows = rows.into_iter();
    let (Some(user_message), Some(reply)) = (rows.next(), rows.next()) else {
        return Err(ChatError::Internal(anyhow::anyhow!(
            "the turn's messages were not written"
        )));
    };
    let reply_id = reply.id.clone();
    let reply_seq = reply.seq;
    let log = start(Turn {
        db: services.db.clone(),
        client: services.client.clone(),
        user_id: user_id.clone(),
        api_key_id,
        conversation_id: conversation_id.clone(),
        agent_id: conversation.agent_id.clone(),
        agents: services.agents.clone(),
        claim,
        user_message,
        reply,
        text,
        history,
        trace,
        tree: serde_json::from_str(&conversation.tree).unwrap_or_else(|_| json!({})),
        tree_limits: services.tree_limits,
        retry: services.retry,
    });
    // Once its task runs, so that a socket that follows it sees it end.
    services
        .notices
        .notify(conversation_id, Notice::TurnStarted);
    Ok(Started {
        log,
        reply_id,
        reply_seq,
    })
}
