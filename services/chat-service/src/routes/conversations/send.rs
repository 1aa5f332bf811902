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
        (status = 409, description = "`turn_in_flight`: a reply is still being written in this conversation.", body = ErrorBody),
        (status = 413, description = "`message_too_long`: the message is over `chat.max_message_chars`; `body_too_large`: the body is over the limit.", body = ErrorBody),
        (status = 422, description = "`empty_message`; `invalid_body`: the JSON does not have the documented shape.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many replies being written at once, or too many messages this minute; `budget_exceeded`: the user's or API key's LLM budget is spent (`error.limit`, `error.resets_at`).", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait before trying again."))),
        (status = 503, description = "`budget_unavailable`: the LLM budget cannot be checked just now; `bus_unavailable`: the service is cut off from its other instances.", body = ErrorBody)
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
