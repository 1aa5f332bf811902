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
use futures_util::StreamExt;
use serde_json::json;

use super::request::{AgentChatRequest, begin_agent_turn, seed_message};
use crate::AppState;
use crate::error::ChatError;
use crate::routes::CallerId;
use crate::store::messages;

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
    let status = reply.to_api().status;
    let mut body = json!({
        "session_id": turn.session_id,
        "message_id": reply.id,
        "message": seed_message(&reply),
    });
    match (status, error) {
        (MessageStatus::Complete | MessageStatus::Canceled, _) => body["status"] = "idle".into(),
        (_, error) => {
            body["status"] = "error".into();
            let (code, message) = match error {
                Some(error) => (error.code, error.message),
                None => (
                    "agent_failed".to_owned(),
                    format!("the reply ended {}", status.as_str()),
                ),
            };
            body["error"] = message.into();
            body["code"] = code.into();
        }
    }
    Ok(HttpResponse::Ok().json(body))
}
