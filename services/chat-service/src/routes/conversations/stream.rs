//! `POST /chat/conversations/{id}/messages/stream`: one turn as SSE.
//!
//! The response reads the turn's event log; closing it does not stop the
//! turn, and `GET …/stream` re-attaches to it.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::AuthedJson;
use confab_protocol::chat::SendMessage;
use confab_protocol::ids::ConversationId;

use super::posted::begin_posted;
use crate::AppState;
use crate::routes::sse;

pub async fn stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<ConversationId>,
    request: AuthedJson<SendMessage>,
) -> Result<HttpResponse, ApiError> {
    let (_, started) = begin_posted(&req, &state, &path, request).await?;
    Ok(sse::response(started.log.subscribe(0)))
}
