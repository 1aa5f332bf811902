//! The user behind a request: a valid access token in `Authorization:
//! Bearer`, or for a WebSocket upgrade (browsers cannot set headers there)
//! in `?token=`.

use actix_web::HttpRequest;
use confab_kit::ApiError;
use confab_kit::auth::bearer_token;
use confab_protocol::auth::{AccessClaims, Role};

use crate::tokens::KeyRing;

pub async fn authenticate(req: &HttpRequest, keys: &KeyRing) -> Result<AccessClaims, ApiError> {
    let token =
        bearer_token(req).ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
    verify(token, keys).await
}

/// For WebSocket upgrades: the bearer token, else `?token=`.
pub async fn authenticate_upgrade(
    req: &HttpRequest,
    query_token: Option<&str>,
    keys: &KeyRing,
) -> Result<AccessClaims, ApiError> {
    let token = bearer_token(req)
        .or(query_token)
        .ok_or_else(|| ApiError::unauthorized("a bearer token or ?token= is required"))?;
    verify(token, keys).await
}

/// An administrator's token, else 401 (no valid token) or 403.
pub async fn authenticate_admin(
    req: &HttpRequest,
    keys: &KeyRing,
) -> Result<AccessClaims, ApiError> {
    let claims = authenticate(req, keys).await?;
    if claims.role != Role::Admin {
        return Err(ApiError::forbidden("administrators only"));
    }
    Ok(claims)
}

async fn verify(token: &str, keys: &KeyRing) -> Result<AccessClaims, ApiError> {
    keys.verify(token)
        .await
        .ok_or_else(|| ApiError::unauthorized("invalid or expired token"))
}
