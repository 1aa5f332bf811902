//! `DELETE /api/v1/auth/sessions/{id}`: ends one of the caller's sessions
//! (204): its refresh token is refused from now on; an access token it
//! already issued lives out its few minutes. Another user's session, or one
//! already ended, is 404.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_protocol::error::ErrorBody;

use crate::GatewayState;
use crate::auth::authenticate;
use crate::error::GatewayError;
use crate::store::refresh_tokens;

/// Ends one of the caller's sessions: its refresh token is refused from
/// now on.
#[utoipa::path(
    delete,
    path = "/api/v1/auth/sessions/{id}",
    operation_id = "end_session",
    tag = "auth",
    params(("id" = String, Path, description = "The session's id, from the list.")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "The session is ended."),
        (status = 403, description = "`api_key_not_allowed`: an API key; `csrf_rejected`: by cookie, from an origin the gateway does not trust.", body = ErrorBody),
        (status = 404, description = "`not_found`: no live session of the caller has that id.", body = ErrorBody),
    )
)]
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = authenticate(&req, &state.keys, &state.browser).await?;
    if !refresh_tokens::revoke_session(&state.db, &user.sub, &id).await? {
        return Err(GatewayError::SessionNotFound.into());
    }
    Ok(HttpResponse::NoContent().finish())
}
