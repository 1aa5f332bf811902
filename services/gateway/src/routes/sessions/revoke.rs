//! `DELETE /api/v1/auth/sessions/{id}`: ends one of the caller's sessions
//! (204): its refresh token is refused from now on; an access token it
//! already issued lives out its few minutes. Another user's session, or one
//! already ended, is 404.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;

use crate::GatewayState;
use crate::auth::authenticate;
use crate::error::GatewayError;
use crate::store::refresh_tokens;

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
