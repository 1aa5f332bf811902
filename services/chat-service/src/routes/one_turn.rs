//! What the single-request chat endpoints (`/chat/unified`,
//! `/chat/completions`) share: a conversation made by its first message, and
//! waiting for a turn's reply.

use confab_kit::ApiError;
use confab_protocol::chat::Message;
use confab_protocol::ids::{AgentId, ConversationId, UserId};
use futures_util::StreamExt;

use crate::AppState;
use crate::a2a::select;
use crate::domain::{ConversationTitle, MessageText};
use crate::error::ChatError;
use crate::store::{conversations, messages};
use crate::turns::begin::Started;

/// A new conversation of `user_id` with `agent_id` (registered: the caller
/// checked), titled by the start of its first message; its id.
pub async fn new_conversation(
    state: &AppState,
    user_id: &UserId,
    text: &MessageText,
    agent_id: AgentId,
) -> Result<ConversationId, ApiError> {
    let row = conversations::new_row(user_id, ConversationTitle::from_message(text), agent_id);
    conversations::create(&state.db, &row).await?;
    Ok(row.id)
}

/// The conversation a first message makes when it names none: with the
/// agent `requested`, else the one its skills suit best, else the default
/// ([`select::choose`]); its id and agent.
pub async fn conversation_for(
    state: &AppState,
    user_id: &UserId,
    text: &MessageText,
    requested: Option<String>,
) -> Result<(ConversationId, AgentId), ApiError> {
    let agent_id = select::choose(
        &state.agents,
        requested,
        Some(text.as_str()),
        &state.chat.default_agent,
    )
    .await?;
    let id = new_conversation(state, user_id, text, agent_id.clone()).await?;
    Ok((id, agent_id))
}

/// The reply of a started turn once the turn has ended (the log ends after
/// `done`, once the reply is saved).
pub async fn finished_reply(
    state: &AppState,
    user_id: &UserId,
    started: &Started,
) -> Result<Message, ApiError> {
    started.log.subscribe(0).for_each(|_| async {}).await;
    let reply = messages::get(&state.db, user_id, &started.reply_id)
        .await?
        .ok_or(ChatError::ConversationNotFound)?;
    Ok(reply.to_api())
}
