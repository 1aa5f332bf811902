//! What `POST /chat/agent/chat` and `…/stream` share: the seed's request
//! body, its session found or made, and the turn begun in it.

use actix_web::HttpRequest;
use confab_kit::ApiError;
use confab_kit::auth::{AuthedJson, Caller};
use confab_protocol::chat::{MessageRole, MessageStatus, MessageUsage};
use confab_protocol::ids::{ConversationId, MessageId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::a2a::client::Trace;
use crate::domain::MessageText;
use crate::error::ChatError;
use crate::routes::CallerId;
use crate::routes::one_turn;
use crate::store::conversations;
use crate::store::models::MessageRow;
use crate::turns::begin::{Started, begin};

/// `{message, session_id?, agent_id?}`; unknown fields (the seed's
/// `character_id`) are ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AgentChatRequest {
    /// Not blank; at most `chat.max_message_chars` (10,000 by default).
    #[schema(pattern = r"\S")]
    pub message: String,
    /// The session to go on with; without it, a new one.
    #[serde(default)]
    pub session_id: Option<String>,
    /// The agent of a new session; without it, the one whose skills match
    /// the message, else the default one.
    #[serde(default)]
    pub agent_id: Option<String>,
}

/// A turn begun for the request, in the session it names or a new one.
pub struct AgentTurn {
    pub caller: Caller,
    pub session_id: ConversationId,
    pub started: Started,
}

/// Checks the request, finds its session (404 when not the caller's) or
/// makes one, and begins the turn. A refused request leaves nothing: the
/// turn budget is checked before a session is made.
pub async fn begin_agent_turn(
    req: &HttpRequest,
    state: &AppState,
    request: AuthedJson<AgentChatRequest>,
) -> Result<AgentTurn, ApiError> {
    let AuthedJson { caller, body } = request;
    let text = MessageText::parse(body.message, state.chat.max_message_chars)?;
    let permit = state
        .turn_budget
        .admit(&caller.user(), caller.api_key_id.as_deref())
        .await?;
    let named = body
        .session_id
        .filter(|id| !id.trim().is_empty())
        .map(ConversationId::from);
    let session_id = match named {
        Some(id) => {
            conversations::get(&state.db, &caller.user(), &id)
                .await?
                .ok_or(ChatError::SessionNotFound)?;
            id
        }
        None => {
            one_turn::conversation_for(state, &caller.user(), &text, body.agent_id)
                .await?
                .0
        }
    };
    let started = begin(
        state.turn_services(),
        permit,
        &session_id,
        text,
        Trace::from_request(req),
    )
    .await?;
    Ok(AgentTurn {
        caller,
        session_id,
        started,
    })
}

/// A message as the seed's history lists it: `{id, role, content,
/// content_blocks, created_at, token_usage}`, and its `status` (how a reply
/// ended: the seed's error states).
#[derive(Debug, Serialize, ToSchema)]
pub struct SeedMessage {
    pub id: MessageId,
    pub role: MessageRole,
    pub content: String,
    pub content_blocks: Value,
    pub created_at: String,
    pub token_usage: Option<MessageUsage>,
    pub status: MessageStatus,
}

pub fn seed_message(row: &MessageRow) -> SeedMessage {
    let message = row.to_api();
    SeedMessage {
        id: row.id.clone(),
        role: message.role,
        content: message.content,
        content_blocks: message.content_blocks,
        created_at: message.created_at,
        token_usage: message.token_usage,
        status: message.status,
    }
}
