//! `POST /chat/sessions/{id}/messages/stream` `{"message"}`: one turn as
//! SSE, as `POST /chat/conversations/{id}/messages/stream` runs it, in seed
//! 000's form: text as `text_token`, and ids of the conversation
//! ([`super::event_id`]), so that a client may go on with
//! `GET …/messages/stream` from the last one it read.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::AuthedJson;
use confab_protocol::chat::SendMessage;
use confab_protocol::error::ErrorBody;
use confab_protocol::ids::ConversationId;
use futures_util::StreamExt;

use super::encode::{self, SessionEvent};
use crate::AppState;
use crate::routes::conversations::posted::begin_posted;
use crate::routes::sse;
use crate::routes::turn_refusals::TurnRefusals;

/// One turn, streamed as SSE in seed 000's form.
///
/// As `POST /chat/conversations/{id}/messages/stream`, with text as
/// `text_token` and ids of the conversation (`R.E`, `R.end`), so that a
/// client may go on with `GET …/messages/stream` from the last one read.
#[utoipa::path(
    post,
    path = "/chat/sessions/{id}/messages/stream",
    tag = "seeds",
    operation_id = "sessions_stream",
    params(("id" = String, Path, description = "The session's id (a conversation's, `conv-…`).")),
    request_body = SendMessage,
    responses(
        (status = 200, description = "The turn's events, one JSON object per `data:` line: the native ones, with `text_token` for `text`.", content_type = "text/event-stream", body = SessionEvent),
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
    let reply_seq = started.reply_seq;
    let frames = started
        .log
        .subscribe(0)
        .map(move |(seq, event)| encode::frame(encode::live_id(reply_seq, seq, &event), &event));
    Ok(sse::frames(frames))
}
