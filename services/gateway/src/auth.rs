//! The user behind a request: a valid access token in `Authorization:
//! Bearer`, for a WebSocket upgrade (browsers cannot set headers there) in
//! `?token=`, and from a browser in the `confab_access` cookie (see
//! `browser`). The header wins over the query, both over the cookie. A
//! request signed in by the cookie passes the CSRF check first (403
//! `csrf_rejected`); a token that does not verify is 401 wherever it came
//! from.
//!
//! API keys (`cfk_…`, see `api_keys`) are accepted where
//! [`authenticate_caller`] is used: the proxied routes and `/auth/me`.
//! Everywhere else a key is refused with 403 `api_key_not_allowed`.

use actix_web::HttpRequest;
use chrono::Utc;
use confab_kit::ApiError;
use confab_kit::auth::{ServiceAuth, bearer_token, service_token_state};
use confab_protocol::auth::{AccessClaims, AuthContext, Role};

use crate::GatewayState;
use crate::api_keys::{self, KeyGrant};
use crate::browser::{self, Browser};
use crate::error::GatewayError;
use crate::tokens::KeyRing;

/// Who made a request on a route that takes API keys.
#[derive(Debug)]
pub enum Caller {
    /// A user, by her access token (header, query or cookie).
    User(AccessClaims),
    /// One of a user's API keys, with its scopes.
    Key(KeyGrant),
}

impl Caller {
    /// The identity passed on to the services.
    pub fn identity(self) -> AuthContext {
        match self {
            Caller::User(claims) => AuthContext {
                user_id: claims.sub,
                username: Some(claims.name),
                role: claims.role,
                api_key_id: None,
            },
            Caller::Key(grant) => grant.identity,
        }
    }
}

/// [`authenticate`], or for a WebSocket upgrade [`authenticate_upgrade`],
/// also taking an API key as the bearer token (or, on an upgrade, as
/// `?token=`). The key is checked against the database now, so a revoked
/// or expired one is refused on its next use.
pub async fn authenticate_caller(
    req: &HttpRequest,
    query_token: Option<&str>,
    upgrade: bool,
    state: &GatewayState,
) -> Result<Caller, ApiError> {
    let presented = bearer_token(req).or(query_token.filter(|_| upgrade));
    if let Some(key) = presented.filter(|token| api_keys::is_api_key(token)) {
        let grant = api_keys::verify(&state.db, key, Utc::now().naive_utc()).await?;
        return Ok(Caller::Key(grant));
    }
    let claims = match upgrade {
        true => authenticate_upgrade(req, query_token, &state.keys, &state.browser).await?,
        false => authenticate(req, &state.keys, &state.browser).await?,
    };
    Ok(Caller::User(claims))
}

pub async fn authenticate(
    req: &HttpRequest,
    keys: &KeyRing,
    browser: &Browser,
) -> Result<AccessClaims, ApiError> {
    if let Some(token) = bearer_token(req) {
        return verify(token, keys).await;
    }
    let token = browser::access_cookie(req).ok_or_else(|| GatewayError::BearerRequired)?;
    browser.check_cookie_request(req, false)?;
    verify(&token, keys).await
}

/// For WebSocket upgrades: the bearer token, else `?token=`, else the
/// access cookie (whose upgrade must come from a trusted origin).
pub async fn authenticate_upgrade(
    req: &HttpRequest,
    query_token: Option<&str>,
    keys: &KeyRing,
    browser: &Browser,
) -> Result<AccessClaims, ApiError> {
    if let Some(token) = bearer_token(req).or(query_token) {
        return verify(token, keys).await;
    }
    let token = browser::access_cookie(req).ok_or_else(|| GatewayError::BearerOrQueryRequired)?;
    browser.check_cookie_request(req, true)?;
    verify(&token, keys).await
}

/// An administrator's token, else 401 (no valid token) or 403.
pub async fn authenticate_admin(
    req: &HttpRequest,
    keys: &KeyRing,
    browser: &Browser,
) -> Result<AccessClaims, ApiError> {
    let claims = authenticate(req, keys, browser).await?;
    if claims.role != Role::Admin {
        return Err(GatewayError::AdminsOnly.into());
    }
    Ok(claims)
}

/// The operator's side (`/metrics`): the service token in
/// `X-Service-Token`, or an administrator's access token in `Authorization`
/// (not the console's cookie: scrapers and scripts read metrics, not pages). Else 401 (neither,
/// or a wrong one) or 403 (a valid token of a user who is not an admin).
pub async fn authenticate_operator(
    req: &HttpRequest,
    service: &ServiceAuth,
    keys: &KeyRing,
) -> Result<(), ApiError> {
    if service_token_state(req, service)? {
        return Ok(());
    }
    let token = bearer_token(req).ok_or_else(|| GatewayError::ServiceOrAdminRequired)?;
    if verify(token, keys).await?.role != Role::Admin {
        return Err(GatewayError::AdminsOnly.into());
    }
    Ok(())
}

async fn verify(token: &str, keys: &KeyRing) -> Result<AccessClaims, ApiError> {
    if api_keys::is_api_key(token) {
        return Err(GatewayError::ApiKeyNotAllowed.into());
    }
    keys.verify(token)
        .await
        .ok_or_else(|| ApiError::from(GatewayError::InvalidToken))
}
