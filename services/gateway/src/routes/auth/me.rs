//! `GET /api/v1/auth/me`: the caller, by access token or API key.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_protocol::auth::{Role, UserInfo};
use confab_protocol::error::ErrorBody;

use crate::GatewayState;
use crate::auth::authenticate_caller;
use crate::error::GatewayError;
use crate::store::users;

/// The caller: the user behind the access token, console session or API
/// key.
#[utoipa::path(
    get,
    path = "/api/v1/auth/me",
    operation_id = "me",
    tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The caller.", body = UserInfo),
        (status = 401, description = "`unauthorized`: no credentials, or ones that are expired, revoked or not valid, or whose user was deleted.", body = ErrorBody),
    )
)]
pub async fn me(
    req: HttpRequest,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate_caller(&req, None, false, &state).await?;
    let user = users::by_id(&state.db, &caller.identity().user_id)
        .await?
        .ok_or_else(|| GatewayError::UserGone)?;
    Ok(HttpResponse::Ok().json(UserInfo {
        id: user.id,
        username: user.username,
        role: Role::parse_lenient(&user.role),
    }))
}
