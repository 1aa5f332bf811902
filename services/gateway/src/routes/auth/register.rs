//! `POST /api/v1/auth/register` `{"username","password"}`. Limited per
//! client IP (`[rate_limits] register_per_minute`).

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_protocol::auth::{Credentials, Role, UserInfo};
use confab_protocol::error::ErrorBody;

use crate::GatewayState;
use crate::domain::{Password, Username};
use crate::error::GatewayError;
use crate::store::users::{self, UserRow};

/// Creates an account (role `user`).
#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    operation_id = "register",
    tag = "auth",
    request_body = Credentials,
    responses(
        (status = 201, description = "The new account.", body = UserInfo),
        (status = 409, description = "`username_taken`: an account has that name.", body = ErrorBody),
        (status = 422, description = "`invalid_username`: not 3 to 32 characters of letters, digits, `_`, `.` or `-`; `weak_password`: under 8 characters; `invalid_password`: over 1024 characters; `invalid_body`: the JSON does not have the documented shape.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many registrations from this address (`[rate_limits] register_per_minute`).", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a retry can succeed."))),
    )
)]
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
