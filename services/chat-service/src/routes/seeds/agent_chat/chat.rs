//! `POST /chat/agent/chat` `{message, session_id?, agent_id?}`: one turn,
//! answered once it is over (200):
//! `{"session_id", "status", "message_id", "message"}`, where `status` is
//! the seed's session status after the turn (`idle`, or `error` when the
//! reply did not complete, with `error` (text) and `code` beside it) and
//! `message` the reply as the history lists it.
//!
//! Bad input: 400/422/413 as for any turn; another user's session: 404; a
//! turn already running in the session: 409; over the turn budget: 429.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::AuthedJson;
use confab_protocol::chat::{ChatEvent, MessageStatus};
use confab_protocol::error::ErrorBody;
use confab_protocol::ids::{ConversationId, MessageId};
use futures_util::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;

use super::request::{AgentChatRequest, SeedMessage, begin_agent_turn, seed_message};
use crate::AppState;
use crate::error::ChatError;
use crate::routes::CallerId;
use crate::routes::turn_refusals::TurnRefusals;
use crate::store::messages;

/// A turn's end as seed 003 reads it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentChatReply {
    pub session_id: ConversationId,
    /// `idle`, or `error` when the reply did not complete.
    pub status: &'static str,
    pub message_id: MessageId,
    /// The reply as the history lists it.
    pub message: SeedMessage,
    /// With `error`: why the reply did not complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// With `error`: the code of that (`agent_failed`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// One turn in seed 003's form, answered once it is over.
#[utoipa::path(
    post,
    path = "/chat/agent/chat",
    tag = "seeds",
    operation_id = "agent_chat",
    request_body = AgentChatRequest,
    responses(
        (status = 200, description = "The turn's end: the session, its status after the turn and the reply.", body = AgentChatReply),
        (status = 404, description = "`not_found`: `session_id` is not a session of the caller's; `unknown_agent`: `agent_id`, or the session's agent, is not registered.", body = ErrorBody),
        (status = 422, description = "`empty_message`; `invalid_body`: the JSON does not have the documented shape.", body = ErrorBody),
        TurnRefusals
    ),
    security(("bearer" = []))
)]
pub async fn chat(
    req: HttpRequest,
    state: web::Data<AppState>,
    request: AuthedJson<AgentChatRequest>,
) -> Result<HttpResponse, ApiError> {
    let turn = begin_agent_turn(&req, &state, request).await?;
    // The turn's log ends after `done`, once the reply is saved; its last
    // error, if any, says why the reply did not complete.
    let error = turn
        .started
        .log
        .subscribe(0)
        .fold(None, |last, (_, event)| async move {
            match event {
                ChatEvent::Error { error } => Some(error),
                _ => last,
            }
        })
        .await;
    let reply = messages::get(&state.db, &turn.caller.user(), &turn.started.reply_id)
        .await?
        .ok_or(ChatError::SessionNotFound)?;
    let message = seed_message(&reply);
    let (status, error, code) = match (message.status, error) {
        (MessageStatus::Complete | MessageStatus::Canceled, _) => ("idle", None, None),
        (status, error) => {
            let (code, message) = match error {
                Some(error) => (error.code, error.message),
                None => (
                    "agent_failed".to_owned(),
                    format!("the reply ended {}", status.as_str()),
                ),
            };
            ("error", Some(message), Some(code))
        }
    };
    Ok(HttpResponse::Ok().json(AgentChatReply {
        session_id: turn.session_id,
        status,
        message_id: reply.id,
        message,
        error,
        code,
    }))
}
