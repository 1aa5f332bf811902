//! The user behind a request: a valid access token in `Authorization: Bearer`.

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;
use confab_kit::ApiError;
use confab_protocol::auth::AccessClaims;

use crate::tokens::KeyRing;

pub fn authenticate(req: &HttpRequest, keys: &KeyRing) -> Result<AccessClaims, ApiError> {
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
    keys.verify(token)
        .ok_or_else(|| ApiError::unauthorized("invalid or expired token"))
}
