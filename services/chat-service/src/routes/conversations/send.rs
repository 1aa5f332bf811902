//! `POST /chat/conversations/{id}/messages` `{"message"}`: one turn,
//! answered with the finished assistant message (201).
//!
//! The turn is the same server-owned turn as the streamed one: a client
//! that gives up waiting does not stop it, and its reply is in the history.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::AuthedJson;
use confab_protocol::chat::{Message, SendMessage};
use confab_protocol::error::ErrorBody;
use confab_protocol::ids::ConversationId;

use super::posted::begin_posted;
use crate::AppState;
use crate::routes::CallerId;
use crate::routes::one_turn::finished_reply;
use crate::routes::turn_refusals::TurnRefusals;

/// One turn, answered with the finished reply.
///
/// The turn is server-owned: a client that gives up waiting does not stop
/// it, and its reply is in the history.
#[utoipa::path(
    post,
    path = "/chat/conversations/{id}/messages",
    tag = "conversations",
    operation_id = "conversations_send",
    params(("id" = String, Path, description = "The conversation's id (`conv-…`).")),
    request_body = SendMessage,
    responses(
        (status = 201, description = "The assistant's reply, once the turn is over (its `status` says how it ended).", body = Message),
        (status = 404, description = "`not_found`: no such conversation of the caller's; `unknown_agent`: the conversation's agent is no longer registered.", body = ErrorBody),
        (status = 422, description = "`empty_message`; `invalid_body`: the JSON does not have the documented shape.", body = ErrorBody),
        TurnRefusals
    ),
    security(("bearer" = []))
)]
pub async fn send(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<ConversationId>,
    request: AuthedJson<SendMessage>,
) -> Result<HttpResponse, ApiError> {
    let (caller, started) = begin_posted(&req, &state, &path, request).await?;
    let reply = finished_reply(&state, &caller.user(), &started).await?;
    Ok(HttpResponse::Created().json(reply))
}
