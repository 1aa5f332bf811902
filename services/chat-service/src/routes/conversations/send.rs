//! `POST /chat/conversations/{id}/messages` `{"message"}`: one turn,
//! answered with the finished assistant message (201).
//!
//! The turn is the same server-owned turn as the streamed one: a client
//! that gives up waiting does not stop it, and its reply is in the history.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::AuthedJson;
use confab_protocol::chat::SendMessage;
use confab_protocol::ids::ConversationId;

use super::posted::begin_posted;
use crate::AppState;
use crate::routes::CallerId;
use crate::routes::one_turn::finished_reply;

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
