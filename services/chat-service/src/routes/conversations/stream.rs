//! `POST /chat/conversations/{id}/messages/stream`: one turn as SSE.
//!
//! The response reads the turn's event log; closing it does not stop the
//! turn, and `GET …/stream` re-attaches to it.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::AuthedJson;
use confab_protocol::chat::{ChatEvent, SendMessage};
use confab_protocol::error::ErrorBody;
use confab_protocol::ids::ConversationId;

use super::posted::begin_posted;
use crate::AppState;
use crate::routes::sse;
use crate::routes::turn_refusals::TurnRefusals;

/// One turn, streamed as SSE.
///
/// Closing the stream does not stop the turn; `GET …/stream` re-attaches
/// to it.
#[utoipa::path(
    post,
    path = "/chat/conversations/{id}/messages/stream",
    tag = "conversations",
    operation_id = "conversations_stream",
    params(("id" = String, Path, description = "The conversation's id (`conv-…`).")),
    request_body = SendMessage,
    responses(
        (status = 200, description = "The turn's events, one JSON object per `data:` line, `id:` their number in the turn: `message_start`, then `text`, `reasoning`, `data`, `tree_update`, `retry`, `error`, and last `done`.", content_type = "text/event-stream", body = ChatEvent),
        (status = 404, description = "`not_found`: no such conversation of the caller's; `unknown_agent`: the conversation's agent is no longer registered.", body = ErrorBody),
        (status = 422, description = "`empty_message`; `invalid_body`: the JSON does not have the documented shape.", body = ErrorBody),
        TurnRefusals
    ),
    security(("bearer" = []))
)]
pub async fn stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<ConversationId>,
    request: AuthedJson<SendMessage>,
) -> Result<HttpResponse, ApiError> {
    let (_, started) = begin_posted(&req, &state, &path, request).await?;
    Ok(sse::response(started.log.subscribe(0)))
}
