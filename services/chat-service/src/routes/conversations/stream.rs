//! `POST /chat/conversations/{id}/messages/stream`: one turn as SSE.
//!
//! The response reads the turn's event log; closing it does not stop the
//! turn, and `GET …/stream` re-attaches to it.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::AuthedJson;
use confab_protocol::chat::SendMessage;

use crate::AppState;
use crate::a2a::client::Trace;
use crate::domain::MessageText;
use crate::routes::sse;
use crate::turns::begin::begin;

pub async fn stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    request: AuthedJson<SendMessage>,
) -> Result<HttpResponse, ApiError> {
    let AuthedJson { caller, body } = request;
    let text = MessageText::parse(body.message, state.chat.max_message_chars)?;
    let started = begin(
        &state,
        &caller.user_id,
        &path.into_inner(),
        text,
        Trace::from_request(&req),
    )
    .await?;
    Ok(sse::response(started.log.subscribe(0)))
}
