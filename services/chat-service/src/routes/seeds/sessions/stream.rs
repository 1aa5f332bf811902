//! `POST /chat/sessions/{id}/messages/stream` `{"message"}`: one turn as
//! SSE, as `POST /chat/conversations/{id}/messages/stream` runs it, in seed
//! 000's form: text as `text_token`, and ids of the conversation
//! ([`super::event_id`]), so that a client may go on with
//! `GET …/messages/stream` from the last one it read.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::AuthedJson;
use confab_protocol::chat::SendMessage;
use confab_protocol::ids::ConversationId;
use futures_util::StreamExt;

use super::encode;
use crate::AppState;
use crate::routes::conversations::posted::begin_posted;
use crate::routes::sse;

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
