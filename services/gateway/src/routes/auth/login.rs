//! `POST /api/v1/auth/login`: JSON `{"username","password"}` or an OAuth2
//! password form (`grant_type=password&username=…&password=…`). Limited
//! per client IP (`[rate_limits] login_per_minute`).
//!
//! Every attempt is in the audit trail (`login.succeeded`, `login.failed`
//! with the name tried, both with the client's address). A disabled account
//! is refused with 403 `account_disabled`, said only after the right
//! password.
//!
//! From the web console (`X-Confab-Client: console`), which must come from a
//! trusted origin (login CSRF: no other site may sign a browser in to an
//! account of its choosing), the tokens are set as cookies and the JSON
//! carries no refresh token (see `browser`).

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_protocol::auth::TokenResponse;
use confab_protocol::error::ErrorBody;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::body;
use super::tokens::{self, no_store};
use crate::GatewayState;
use crate::audit::{self, Action, Actor};
use crate::browser;
use crate::error::GatewayError;
use crate::store::users;

/// The credentials; a form is an OAuth2 password grant.
#[derive(Deserialize, ToSchema)]
struct LoginBody {
    /// `password` (or absent).
    #[serde(default, deserialize_with = "body::present")]
    #[schema(schema_with = password_grant)]
    grant_type: Option<String>,
    username: String,
    password: String,
}

fn password_grant() -> utoipa::openapi::schema::Object {
    body::grant_schema("password")
}

/// Signs in: a token pair for the username and password.
///
/// From the web console (`X-Confab-Client: console`) the tokens are set as
/// cookies (`confab_access`, `confab_refresh`) and the JSON is a
/// `ConsoleTokens`, without the refresh token.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    operation_id = "login",
    tag = "auth",
    request_body(
        description = "The credentials, as JSON or as an OAuth2 password grant form (`grant_type=password&username=…&password=…`).",
        content(
            (LoginBody = "application/json"),
            (LoginBody = "application/x-www-form-urlencoded"),
        )
    ),
    responses(
        (status = 200, description = "Signed in: the token pair (`Cache-Control: no-store`). For the console, a `ConsoleTokens` and the two cookies.", body = TokenResponse,
            headers(("Set-Cookie" = String, description = "For the console only: `confab_access` and `confab_refresh`, HttpOnly."))),
        (status = 400, description = "`malformed_json`: the body is not JSON; `unsupported_grant_type`: a `grant_type` other than `password`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: wrong username or password.", body = ErrorBody),
        (status = 403, description = "`account_disabled`: the account is disabled (said only after the right password); `csrf_rejected`: a console sign-in from an origin the gateway does not trust.", body = ErrorBody),
        (status = 422, description = "`invalid_body`: the JSON or form lacks `username` or `password`, or has a field of the wrong type (a `null` `grant_type`).", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many attempts from this address (`[rate_limits] login_per_minute`).", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a retry can succeed."))),
    )
)]
pub async fn login(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let console = browser::is_console(&req);
    if console {
        state.browser.check_origin(&req)?;
    }
    state.limits.check_login(&req).await?;
    let credentials: LoginBody = body::parse(&req, &body)?;
    body::check_grant_type(credentials.grant_type.as_deref(), "password")?;
    let username = credentials.username.trim().to_lowercase();
    let user = users::by_username(&state.db, &username).await?;
    let stored = match &user {
        Some(user) => user.password_hash.clone(),
        None => state.dummy_hash.clone(),
    };
    let matches = state
        .passwords
        .verify(credentials.password, stored)
        .await
        .map_err(ApiError::internal)?;
    let user = match user {
        Some(user) if matches => user,
        user => {
            let actor = Actor {
                id: user.map(|u| u.id),
                name: Some(username),
            };
            audit::record(&state, &req, actor, Action::LoginFailed, None, json!({})).await?;
            return Err(GatewayError::WrongCredentials.into());
        }
    };
    let actor = Actor::user(&user.id, &user.username);
    if user.disabled_at.is_some() {
        let detail = json!({"reason": "account_disabled"});
        audit::record(&state, &req, actor, Action::LoginFailed, None, detail).await?;
        return Err(GatewayError::AccountDisabled.into());
    }
    audit::record(&state, &req, actor, Action::LoginSucceeded, None, json!({})).await?;
    let tokens = tokens::for_login(&state, &user).await?;
    Ok(match console {
        true => tokens::console_answer(&req, &state, tokens),
        false => no_store().json(tokens),
    })
}
