//! `POST /api/v1/auth/password` `{"current_password", "new_password"}`:
//! a user changes her own password (a signed-in session; never an API
//! key). Every other session ends: all her refresh tokens are revoked and
//! her access tokens issued before refused, here at once and by every
//! service within seconds. This session goes on with the new token pair in
//! the answer (as login's: JSON, or the console's cookies). Limited like
//! login, per client IP, since it checks a password.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use confab_kit::ApiError;
use confab_kit::auth::bearer_token;
use confab_protocol::auth::TokenResponse;
use confab_protocol::error::ErrorBody;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::body;
use super::tokens::{self, no_store};
use crate::GatewayState;
use crate::audit::{self, Action, Actor};
use crate::auth::authenticate;
use crate::browser;
use crate::domain::Password;
use crate::error::GatewayError;
use crate::revocations::cut_off;
use crate::store::{refresh_tokens, users};

/// A user's new password, with her current one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    /// 8 to 1,024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    new_password: String,
}

/// Changes the caller's own password; every other session ends, and this
/// one goes on with the new token pair.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password",
    operation_id = "change_password",
    tag = "auth",
    request_body = PasswordChange,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The password is changed: this session's new token pair (`Cache-Control: no-store`); signed in by the console's cookie, a `ConsoleTokens` and both cookies set again.", body = TokenResponse,
            headers(("Set-Cookie" = String, description = "Signed in by cookie: `confab_access` and `confab_refresh`, HttpOnly."))),
        (status = 401, description = "`unauthorized`: no access token, or one that is expired, revoked or not valid, or whose user was deleted.", body = ErrorBody),
        (status = 403, description = "`wrong_password`: `current_password` is wrong; `api_key_not_allowed`: an API key; `csrf_rejected`: by cookie, from an origin the gateway does not trust.", body = ErrorBody),
        (status = 422, description = "`weak_password`: the new one has under 8 characters; `invalid_password`: over 1024; `invalid_body`: the JSON does not have the documented shape.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many password checks from this address (the login limit).", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a retry can succeed."))),
    )
)]
pub async fn change(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let claims = authenticate(&req, &state.keys, &state.browser).await?;
    state.limits.check_login(&req).await?;
    let change: PasswordChange = body::json(&body)?;
    let new_password = Password::parse(change.new_password)?;
    let user = users::by_id(&state.db, &claims.sub)
        .await?
        .ok_or(GatewayError::UserGone)?;
    let matches = state
        .passwords
        .verify(change.current_password, user.password_hash.clone())
        .await
        .map_err(ApiError::internal)?;
    if !matches {
        return Err(GatewayError::WrongPassword.into());
    }
    let hash = state
        .passwords
        .hash(new_password.into_string())
        .await
        .map_err(ApiError::internal)?;
    let now = Utc::now().naive_utc();
    users::set_password(&state.db, &user.id, &hash, now).await?;
    let revoked = refresh_tokens::revoke_all_of_user(&state.db, &user.id).await?;
    state.keys.revocations().set(&user.id, Some(cut_off(now)));
    tracing::info!(user_id = %user.id, revoked, "password changed; other sessions ended");
    let actor = Actor::user(&user.id, &user.username);
    let detail = json!({"sessions_ended": revoked});
    audit::record(&state, &req, actor, Action::PasswordChanged, None, detail).await?;
    let user = users::UserRow {
        tokens_valid_after: Some(now),
        ..user
    };
    let tokens = tokens::for_login(&state, &user).await?;
    // Signed in by the console's cookie (no bearer token): its cookies get
    // the new pair.
    let console = browser::is_console(&req) || bearer_token(&req).is_none();
    Ok(match console {
        true => tokens::console_answer(&req, &state, tokens),
        false => no_store().json(tokens),
    })
}
