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
use serde::Deserialize;

use super::body;
use super::tokens;
use crate::GatewayState;
use crate::auth::authenticate;
use crate::browser;
use crate::domain::hash_random_secret;
use crate::error::GatewayError;
use crate::store::refresh_tokens;

#[derive(Default, Deserialize)]
struct LogoutBody {
    refresh_token: Option<String>,
    #[serde(default)]
    everywhere: bool,
}

pub async fn logout(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let cookie = browser::refresh_cookie(&req);
    let cookie_form =
        browser::is_console(&req) || cookie.is_some() || browser::access_cookie(&req).is_some();
    let request: LogoutBody = match tokens::is_blank(&body) && cookie_form {
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
