//! `POST /api/v1/auth/register` `{"username","password"}`. Limited per
//! client IP (`[rate_limits] register_per_minute`).

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_protocol::auth::{Credentials, Role, UserInfo};

use crate::GatewayState;
use crate::domain::{Password, Username};
use crate::error::GatewayError;
use crate::store::users::{self, UserRow};

pub async fn register(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    state.limits.check_register(&req).await?;
    let Credentials { username, password } = body.into_inner();
    let username = Username::parse(&username)?;
    let password = Password::parse(password)?;
    let password_hash = state
        .passwords
        .hash(password.into_string())
        .await
        .map_err(ApiError::internal)?;
    let row = UserRow::new(
        username.as_str().to_owned(),
        password_hash,
        Role::User.as_str(),
    );
    match users::insert(&state.db, &row).await {
        Ok(()) => Ok(HttpResponse::Created().json(UserInfo {
            id: row.id,
            username: row.username,
            role: Role::User,
        })),
        Err(err) if err.is_unique_violation() => Err(GatewayError::UsernameTaken.into()),
        Err(err) => Err(err.into()),
    }
}
