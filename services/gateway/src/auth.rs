//! The user behind a request: a valid access token in `Authorization:
//! Bearer`, or for a WebSocket upgrade (browsers cannot set headers there)
//! in `?token=`.

use actix_web::HttpRequest;
use confab_kit::ApiError;
use confab_kit::auth::{ServiceAuth, bearer_token, service_token_state};
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

/// The operator's side (`/metrics`): the service token in
/// `X-Service-Token`, or an administrator's access token. Else 401 (neither,
/// or a wrong one) or 403 (a valid token of a user who is not an admin).
pub async fn authenticate_operator(
    req: &HttpRequest,
    service: &ServiceAuth,
    keys: &KeyRing,
) -> Result<(), ApiError> {
    if service_token_state(req, service)? {
        return Ok(());
    }
    let token = bearer_token(req).ok_or_else(|| {
        ApiError::unauthorized("the service token or an administrator's access token is required")
    })?;
    if verify(token, keys).await?.role != Role::Admin {
        return Err(ApiError::forbidden("administrators only"));
    }
    Ok(())
}

async fn verify(token: &str, keys: &KeyRing) -> Result<AccessClaims, ApiError> {
    keys.verify(token)
        .await
        .ok_or_else(|| ApiError::unauthorized("invalid or expired token"))
}
