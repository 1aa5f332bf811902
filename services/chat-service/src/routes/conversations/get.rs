//! `GET /chat/conversations/{id}`: one conversation with its tree.

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::chat::Conversation;
use confab_protocol::error::ErrorBody;
use confab_protocol::ids::ConversationId;

use crate::AppState;
use crate::error::ChatError;
use crate::routes::CallerId;
use crate::store::conversations;

/// One conversation, with its tree.
#[utoipa::path(
    get,
    path = "/chat/conversations/{id}",
    tag = "conversations",
    operation_id = "conversations_get",
    params(("id" = String, Path, description = "The conversation's id (`conv-…`).")),
    responses(
        (status = 200, description = "The conversation, with its tree.", body = Conversation),
        (status = 404, description = "`not_found`: no such conversation of the caller's.", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<ConversationId>,
) -> Result<HttpResponse, ApiError> {
    let row = conversations::get(&state.db, &caller.user(), &path.into_inner())
        .await?
        .ok_or(ChatError::ConversationNotFound)?;
    Ok(HttpResponse::Ok().json(row.to_api(true)))
}
