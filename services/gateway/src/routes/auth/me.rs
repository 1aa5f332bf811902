//! `GET /api/v1/auth/me`: the caller, by access token or API key.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_protocol::auth::{Role, UserInfo};

use crate::GatewayState;
use crate::auth::authenticate_caller;
use crate::error::GatewayError;
use crate::store::users;

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
