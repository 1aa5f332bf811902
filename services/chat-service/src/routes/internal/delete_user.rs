//! `DELETE /internal/users/{id}`: everything chat-service holds of a user,
//! gone (the gateway calls it when an admin deletes the user). Service
//! token only: a user's token, or none, is 401. 204, also when there was
//! nothing to delete, so the gateway may simply call it again.
//!
//! Every conversation of the user is deleted, its messages with it
//! (`ON DELETE CASCADE`), and every turn of theirs in flight, on any
//! instance, is canceled so its agent stops working for nobody; such a turn
//! ends as usual and its reply, having nowhere to go, is dropped (as for a
//! conversation deleted by its owner). The conversations are listed before
//! they are deleted so that the turns to cancel are known.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::{ServiceAuth, service_token_state};
use confab_protocol::error::ErrorBody;
use confab_protocol::ids::UserId;

use crate::AppState;
use crate::error::ChatError;
use crate::store::conversations;

/// Deletes everything chat-service holds of a user (the gateway's call
/// when an admin deletes one).
///
/// Every conversation of theirs, with its messages; every turn of theirs
/// in flight is canceled. 204 also when there was nothing, so the call may
/// be repeated.
#[utoipa::path(
    delete,
    path = "/internal/users/{id}",
    tag = "internal",
    operation_id = "internal_delete_user",
    params(("id" = String, Path, description = "The user's id.")),
    responses(
        (status = 204, description = "Nothing of the user is left."),
        (status = 401, description = "`unauthorized`: no service token (a user's token is not enough).", body = ErrorBody)
    ),
    security(("service_token" = []))
)]
pub async fn delete_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: web::Data<ServiceAuth>,
    path: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    if !service_token_state(&req, &auth)? {
        return Err(ChatError::ServiceTokenRequired.into());
    }
    let user_id = path.into_inner();
    let owned = conversations::ids_of(&state.db, &user_id).await?;
    let deleted = conversations::delete_all_of(&state.db, &user_id).await?;
    for conversation_id in &owned {
        state.in_flight.cancel(&user_id, conversation_id).await;
    }
    tracing::info!(%user_id, conversations = deleted, "deleted a user's conversations");
    Ok(HttpResponse::NoContent().finish())
}
