//! `POST /api/v1/auth/logout`: `{"refresh_token"}` signs out that login
//! (its refresh token family is revoked); `{"everywhere": true}` with the
//! user's access token signs out every login of the user. Access tokens
//! already issued stay valid until they expire (at most
//! `access_token_ttl_secs`): they are verified without a database lookup,
//! by every service.
//!
//! The web console's refresh token comes in the `confab_refresh` cookie
//! (a token in the body wins), its access token for `everywhere` may come in
//! the `confab_access` cookie, and its body may be empty. A logout that
//! carries either cookie or `X-Confab-Client: console` must come from a
//! trusted origin (see `browser`), and its 204 clears both cookies, also
//! when there was nothing left to revoke: signing out twice is not an error.
//! A refused logout (401 for `everywhere` without a valid access token)
//! leaves the cookies, so the console can refresh and try again.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_protocol::error::ErrorBody;
use serde::Deserialize;
use utoipa::ToSchema;

use super::body;
use super::tokens;
use crate::GatewayState;
use crate::auth::authenticate;
use crate::browser;
use crate::domain::hash_random_secret;
use crate::error::GatewayError;
use crate::store::refresh_tokens;

/// What to sign out: a login by its refresh token, or every login; at
/// least one of the two (`own.rs` says so in the document).
#[derive(Default, Deserialize, ToSchema)]
struct LogoutBody {
    /// The login to end (from the console, in the `confab_refresh` cookie).
    #[serde(default, deserialize_with = "body::present")]
    #[schema(nullable = false)]
    refresh_token: Option<String>,
    /// Every login of the user: needs her access token.
    #[serde(default)]
    everywhere: bool,
}

/// Signs out: one login (by its refresh token), or with `everywhere` and
/// the user's access token every login of the user.
///
/// Access tokens already issued live out their few minutes. For the console
/// (a `confab_*` cookie or `X-Confab-Client: console`) the body may be empty
/// and the answer clears both cookies.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    operation_id = "logout",
    tag = "auth",
    request_body(
        description = "The refresh token of the login to end, or `everywhere: true` (or both); as JSON or a form. Only the console (a `confab_*` cookie or `X-Confab-Client: console`) may send none: without them no body, or one with neither, is 422.",
        content(
            (LogoutBody = "application/json"),
            (LogoutBody = "application/x-www-form-urlencoded"),
        )
    ),
    security((), ("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Signed out (also when there was nothing left to revoke); the console's cookies are cleared.",
            headers(("Set-Cookie" = String, description = "For the console: `confab_access` and `confab_refresh`, expired."))),
        (status = 400, description = "`malformed_json`: a body that is not JSON (nor a form).", body = ErrorBody),
        (status = 401, description = "`unauthorized`: `everywhere` without a valid access token.", body = ErrorBody),
        (status = 403, description = "`csrf_rejected`: a logout by cookie, or for the console, from an origin the gateway does not trust; `api_key_not_allowed`: `everywhere` with an API key.", body = ErrorBody),
        (status = 422, description = "`invalid_body`: no body, or neither a `refresh_token` nor `everywhere: true`, from a client that is not the console; or fields of the wrong type.", body = ErrorBody),
    )
)]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let cookie = browser::refresh_cookie(&req);
    let cookie_form =
        browser::is_console(&req) || cookie.is_some() || browser::access_cookie(&req).is_some();
    // No body reads as an empty one: without a cookie, 422 (nothing named
    // to sign out), not a JSON syntax error.
    let request: LogoutBody = match tokens::is_blank(&body) {
        true => LogoutBody::default(),
        false => body::parse(&req, &body)?,
    };
    if cookie_form {
        state.browser.check_origin(&req)?;
    }
    let token = match (request.refresh_token, cookie) {
        (Some(token), Some(cookie)) if token.trim().is_empty() => Some(cookie),
        (Some(token), _) => Some(token),
        (None, cookie) => cookie,
    };
    if token.is_none() && !request.everywhere && !cookie_form {
        return Err(GatewayError::NothingToSignOut.into());
    }
    if request.everywhere {
        let claims = authenticate(&req, &state.keys, &state.browser).await?;
        let revoked = refresh_tokens::revoke_all_of_user(&state.db, &claims.sub).await?;
        tracing::info!(user_id = %claims.sub, revoked, "signed out everywhere");
    }
    // Possessing the refresh token is the credential; an unknown one gets
    // the same answer, so the endpoint tells nothing about tokens.
    if let Some(token) = token {
        refresh_tokens::revoke_family_of(&state.db, &hash_random_secret(token.trim())).await?;
    }
    let mut response = HttpResponse::NoContent();
    if cookie_form {
        for cookie in state.browser.removal_cookies(&req) {
            response.cookie(cookie);
        }
    }
    Ok(response.finish())
}
