//! `POST /api/v1/auth/refresh`: JSON `{"refresh_token"}` or an OAuth2 form
//! (`grant_type=refresh_token&refresh_token=…`). The presented token is used
//! up and a new pair is returned (rotation); a token presented twice revokes
//! every token of its login (reuse detection), unless it comes back within
//! `auth.refresh_reuse_grace_secs` with nothing of its login used since (a
//! reply lost to a reload; see `store::refresh_tokens`).
//!
//! The web console's token comes in the `confab_refresh` cookie instead,
//! with an empty body (or `{}`); a token in the body wins over the cookie.
//! No body reads as an empty one, so without the cookie it is 422.
//! A refresh by cookie, or any refresh with `X-Confab-Client: console`,
//! must come from a trusted origin, sets both cookies again and answers
//! without the refresh token (see `browser`). When the cookie's token is
//! refused (401: unknown, used, revoked, expired, its user gone) the answer
//! also clears both cookies: that sign-in is over. A 403 `csrf_rejected`
//! leaves them alone, so another site cannot sign the console out.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_protocol::auth::TokenResponse;
use confab_protocol::error::ErrorBody;
use serde::Deserialize;
use utoipa::ToSchema;

use super::body;
use super::tokens::{self, no_store};
use crate::GatewayState;
use crate::browser;
use crate::domain::hash_random_secret;
use crate::error::GatewayError;
use crate::store::refresh_tokens::{self, Rotation};
use crate::store::users;

/// The refresh token to trade; a form is an OAuth2 refresh grant.
#[derive(Default, Deserialize, ToSchema)]
struct RefreshBody {
    /// `refresh_token` (or absent).
    #[serde(default, deserialize_with = "body::present")]
    #[schema(schema_with = refresh_grant)]
    grant_type: Option<String>,
    /// The refresh token; only the console may leave it out (or empty),
    /// for the one in its `confab_refresh` cookie.
    #[schema(required = true, nullable = false)]
    refresh_token: Option<String>,
}

fn refresh_grant() -> utoipa::openapi::schema::Object {
    body::grant_schema("refresh_token")
}

/// Trades a refresh token for a new pair (the presented one is used up).
///
/// The console's refresh token comes in the `confab_refresh` cookie with
/// an empty body; its answer sets both cookies again and is a
/// `ConsoleTokens`, without the refresh token. A token presented twice
/// signs out every session of its login.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    operation_id = "refresh",
    tag = "auth",
    request_body(
        description = "The refresh token, as JSON or as an OAuth2 form (`grant_type=refresh_token&refresh_token=…`). Only the console, whose token is in the `confab_refresh` cookie, sends none (an empty body or `{}`); without that cookie no body, or none with a `refresh_token`, is 422.",
        content(
            (RefreshBody = "application/json"),
            (RefreshBody = "application/x-www-form-urlencoded"),
        )
    ),
    responses(
        (status = 200, description = "The next token pair (`Cache-Control: no-store`). By cookie or for the console, a `ConsoleTokens` and the two cookies.", body = TokenResponse,
            headers(("Set-Cookie" = String, description = "By cookie or for the console: `confab_access` and `confab_refresh`, HttpOnly."))),
        (status = 400, description = "`malformed_json`: the body is not JSON; `unsupported_grant_type`: a `grant_type` other than `refresh_token`.", body = ErrorBody),
        (status = 401, description = "`refresh_token_reused`: already used (every session of its login is now signed out); `refresh_token_revoked`; `refresh_token_expired`; `invalid_refresh_token`: unknown, or its user is gone. A refused cookie is cleared.", body = ErrorBody),
        (status = 403, description = "`csrf_rejected`: a refresh by cookie, or for the console, from an origin the gateway does not trust (the cookies are kept).", body = ErrorBody),
        (status = 422, description = "`invalid_body`: no `refresh_token` in the body (or no body) nor in a cookie, or fields of the wrong type (a `null` `grant_type`).", body = ErrorBody),
    )
)]
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let cookie = browser::refresh_cookie(&req);
    let console = browser::is_console(&req);
    // No body reads as an empty one: without the cookie, 422.
    let presented: RefreshBody = match tokens::is_blank(&body) {
        true => RefreshBody::default(),
        false => body::parse(&req, &body)?,
    };
    body::check_grant_type(presented.grant_type.as_deref(), "refresh_token")?;
    let (token, from_cookie) = match (presented.refresh_token, cookie) {
        (Some(token), Some(cookie)) if token.trim().is_empty() => (cookie, true),
        (Some(token), _) => (token.trim().to_owned(), false),
        (None, Some(cookie)) => (cookie, true),
        (None, None) => {
            return Err(GatewayError::MissingRefreshToken.into());
        }
    };
    let cookie_form = from_cookie || console;
    if cookie_form {
        state.browser.check_origin(&req)?;
    }
    match rotate(&state, &token).await {
        Ok(tokens) if cookie_form => Ok(tokens::console_answer(&req, &state, tokens)),
        Ok(tokens) => Ok(no_store().json(tokens)),
        Err(err) if from_cookie && err.status().is_client_error() => {
            Ok(tokens::error_clearing_cookies(&req, &state, &err))
        }
        Err(err) => Err(err),
    }
}

/// Uses `presented` up and makes the next pair.
async fn rotate(state: &GatewayState, presented: &str) -> Result<TokenResponse, ApiError> {
    // The user and family are filled in by the store from the used token.
    let (refresh_token, next) = tokens::new_refresh_token(state, "", String::new());
    let rotation = refresh_tokens::rotate(
        &state.db,
        &hash_random_secret(presented),
        next,
        state.refresh_reuse_grace,
    )
    .await?;
    let user_id = match rotation {
        Rotation::Rotated { user_id } => user_id,
        Rotation::Reused => {
            tracing::warn!("a used refresh token was presented again; its family is revoked");
            return Err(GatewayError::RefreshTokenReused.into());
        }
        Rotation::Revoked => {
            return Err(GatewayError::RefreshTokenRevoked.into());
        }
        Rotation::Expired => {
            return Err(GatewayError::RefreshTokenExpired.into());
        }
        Rotation::Unknown => return Err(GatewayError::UnknownRefreshToken.into()),
    };
    let user = users::by_id(&state.db, &user_id)
        .await?
        .ok_or(GatewayError::RefreshTokenUserGone)?;
    // Disabling revokes the sessions too; this holds for a rotation that
    // raced it.
    if user.disabled_at.is_some() {
        return Err(GatewayError::RefreshTokenRevoked.into());
    }
    tokens::access_with(state, &user, refresh_token)
}
