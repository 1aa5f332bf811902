//! `DELETE /chat/conversations/{id}`: deletes the conversation and its
//! messages; 204.
//!
//! A turn in flight there is canceled, so its agent stops working for a
//! conversation that is gone; the turn still ends as usual, and its reply,
//! having nowhere to go, is dropped.

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::error::ErrorBody;
use confab_protocol::ids::ConversationId;

use crate::AppState;
use crate::error::ChatError;
use crate::routes::CallerId;
use crate::store::conversations;

/// Deletes a conversation and its messages.
///
/// A turn in flight there is canceled.
#[utoipa::path(
    delete,
    path = "/chat/conversations/{id}",
    tag = "conversations",
    operation_id = "conversations_delete",
    params(("id" = String, Path, description = "The conversation's id (`conv-…`).")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "`not_found`: no such conversation of the caller's.", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<ConversationId>,
) -> Result<HttpResponse, ApiError> {
    let conversation_id = path.into_inner();
    if !conversations::delete(&state.db, &caller.user(), &conversation_id).await? {
        return Err(ChatError::ConversationNotFound.into());
    }
    state
        .in_flight
        .cancel(&caller.user(), &conversation_id)
        .await;
    Ok(HttpResponse::NoContent().finish())
}
