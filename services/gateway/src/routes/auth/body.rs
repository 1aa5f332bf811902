//! Request bodies of the auth endpoints: JSON, or an OAuth2-style form
//! (`application/x-www-form-urlencoded`), into the same struct.

use actix_web::HttpRequest;
use serde::de::DeserializeOwned;

use crate::error::GatewayError;

pub fn parse<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, GatewayError> {
    let is_form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        return serde_urlencoded::from_bytes(body).map_err(GatewayError::InvalidForm);
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(GatewayError::MalformedJson)?;
    serde_json::from_value(value).map_err(GatewayError::InvalidBody)
}

/// A JSON-only body: not JSON → 400 `malformed_json`, JSON of the wrong
/// shape → 422 `invalid_body`.
pub fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, GatewayError> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => GatewayError::InvalidBody(e),
        _ => GatewayError::MalformedJson(e),
    })
}

/// An OAuth2 `grant_type`, when given, must be `expected`.
pub fn check_grant_type(given: Option<&str>, expected: &'static str) -> Result<(), GatewayError> {
    match given {
        Some(grant) if grant != expected => Err(GatewayError::UnsupportedGrantType(expected)),
        _ => Ok(()),
    }
}
