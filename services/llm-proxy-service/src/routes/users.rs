//! `DELETE /internal/users/{id}` (service token only): the gateway deletes
//! a user, and with them everything this service keeps about them.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_protocol::error::ErrorBody;

use crate::AppState;
use crate::auth::require_service_token;
use crate::budget::parse_subject_id;
use crate::store::users::delete_user_data;

/// Deletes the user's calls, tool calls, trace events and budgets; 204,
/// also when there was nothing to delete (a retried delete succeeds).
#[utoipa::path(
    delete,
    path = "/internal/users/{id}",
    tag = "internal",
    params(("id" = String, Path, description = "The user's id.")),
    security(("service_token" = [])),
    responses(
        (status = 204, description = "Deleted, or there was nothing to delete."),
        (status = 400, description = "`invalid_id`: the id is empty, over 128 characters or has control characters.", body = ErrorBody)
    )
)]
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require_service_token(&req, &state.service_auth)?;
    let user_id = parse_subject_id(&path)?;
    delete_user_data(&state.db, user_id).await?;
    tracing::info!(user_id, "deleted the user's calls, traces and budgets");
    Ok(HttpResponse::NoContent().finish())
}
