//! Request bodies of the auth endpoints: JSON, or an OAuth2-style form
//! (`application/x-www-form-urlencoded`), into the same struct.

use actix_web::HttpRequest;
use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

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
    json(body)
}

/// A JSON-only body: not JSON → 400 `malformed_json`, JSON of the wrong
/// shape → 422 `invalid_body`. Every body is an object: serde would read
/// a struct from an array too (`[true]` as its first field).
pub fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, GatewayError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(GatewayError::MalformedJson)?;
    if !value.is_object() {
        return Err(GatewayError::BodyNotObject);
    }
    serde_json::from_value(value).map_err(GatewayError::InvalidBody)
}

/// An optional field that, when present, has its type: `null` is refused
/// (422 `invalid_body`) as the documents say, not read as absent. With
/// `#[serde(default)]` for the field's absence.
pub fn present<'de, D, T>(field: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(field).map(Some)
}

/// The schema of a `grant_type` that must be `grant`.
pub fn grant_schema(grant: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(format!("`{grant}` (or absent).")))
        .enum_values(Some([grant]))
        .build()
}

/// An OAuth2 `grant_type`, when given, must be `expected`.
pub fn check_grant_type(given: Option<&str>, expected: &'static str) -> Result<(), GatewayError> {
    match given {
        Some(grant) if grant != expected => Err(GatewayError::UnsupportedGrantType(expected)),
        _ => Ok(()),
    }
}
