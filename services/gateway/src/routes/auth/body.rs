//! Request bodies of the auth endpoints: JSON, or an OAuth2-style form
//! (`application/x-www-form-urlencoded`), into the same struct.

use actix_web::HttpRequest;
use confab_kit::ApiError;
use serde::de::DeserializeOwned;

pub fn parse<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, ApiError> {
    let is_form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        return serde_urlencoded::from_bytes(body)
            .map_err(|e| ApiError::unprocessable("invalid_body", format!("invalid form: {e}")));
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("malformed_json", format!("malformed JSON: {e}")))?;
    serde_json::from_value(value)
        .map_err(|e| ApiError::unprocessable("invalid_body", format!("invalid body: {e}")))
}

/// An OAuth2 `grant_type`, when given, must be `expected`.
pub fn check_grant_type(given: Option<&str>, expected: &str) -> Result<(), ApiError> {
    match given {
        Some(grant) if grant != expected => Err(ApiError::bad_request(
            "unsupported_grant_type",
            format!("only grant_type={expected} is supported here"),
        )),
        _ => Ok(()),
    }
}
