//! Who is calling: the "dual auth format" of DESIGN §5.
//!
//! A request from the gateway carries the shared service token
//! (`X-Service-Token`) and the user's identity, in `_auth` inside a JSON body
//! or in `X-User-Id`/`X-User-Role` headers. Identity from a caller is trusted
//! only together with a valid service token; `_auth` or identity headers
//! without it are refused with 401, never silently ignored.

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest, web};
use confab_protocol::auth::{
    AUTH_FIELD, AuthContext, Role, SERVICE_TOKEN_HEADER, USER_ID_HEADER, USER_NAME_HEADER,
    USER_ROLE_HEADER,
};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The service's trust configuration, registered as app data.
#[derive(Clone)]
pub struct ServiceAuth {
    service_token: Arc<str>,
}

impl ServiceAuth {
    pub fn new(service_token: impl Into<Arc<str>>) -> Self {
        Self {
            service_token: service_token.into(),
        }
    }

    /// Compares in constant time so the token cannot be guessed byte by byte.
    pub fn is_service_token(&self, candidate: &str) -> bool {
        !self.service_token.is_empty()
            && bool::from(candidate.as_bytes().ct_eq(self.service_token.as_bytes()))
    }

    pub fn service_token(&self) -> &str {
        &self.service_token
    }
}

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    pub username: Option<String>,
    pub role: Role,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

impl From<AuthContext> for Caller {
    fn from(ctx: AuthContext) -> Self {
        Self {
            user_id: ctx.user_id,
            username: ctx.username,
            role: ctx.role,
        }
    }
}

/// Whether the request carries a valid service token. A present but wrong
/// token is an error, not "absent".
fn service_token_state(req: &HttpRequest, auth: &ServiceAuth) -> Result<bool, ApiError> {
    match req.headers().get(SERVICE_TOKEN_HEADER) {
        None => Ok(false),
        Some(value) => {
            let valid = value
                .to_str()
                .map(|v| auth.is_service_token(v))
                .unwrap_or(false);
            if valid {
                Ok(true)
            } else {
                Err(ApiError::unauthorized("invalid service token"))
            }
        }
    }
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

fn service_auth(req: &HttpRequest) -> Result<&ServiceAuth, ApiError> {
    req.app_data::<web::Data<ServiceAuth>>()
        .map(|d| d.get_ref())
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("ServiceAuth is not registered")))
}

/// Identity from `X-User-Id`/`X-User-Role` headers (with the service token).
fn caller_from_headers(req: &HttpRequest) -> Result<Caller, ApiError> {
    let auth = service_auth(req)?;
    let trusted = service_token_state(req, auth)?;
    let user_id = header(req, USER_ID_HEADER);
    match (trusted, user_id) {
        (true, Some(user_id)) => Ok(Caller {
            user_id: user_id.to_owned(),
            username: header(req, USER_NAME_HEADER).map(str::to_owned),
            role: header(req, USER_ROLE_HEADER)
                .map(Role::parse_lenient)
                .unwrap_or_default(),
        }),
        (true, None) => Err(ApiError::unauthorized(
            "the service token must come with X-User-Id or _auth",
        )),
        (false, Some(_)) => Err(ApiError::unauthorized(
            "identity headers are accepted only with the service token",
        )),
        (false, None) => Err(ApiError::unauthorized("authentication required")),
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(caller_from_headers(req))
    }
}

/// A JSON body together with its caller. `_auth` is taken out of the body
/// (trusted only with the service token) before the rest is parsed into `T`.
///
/// Errors: a body that is not JSON → 400 `malformed_json`; JSON of the wrong
/// shape → 422 `invalid_body`; over the limit → 413 `body_too_large`.
pub struct AuthedJson<T> {
    pub caller: Caller,
    pub body: T,
}

impl<T: DeserializeOwned + 'static> FromRequest for AuthedJson<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        // The body limit is actix's `PayloadConfig` (256 KiB unless the
        // service registers another); past it the request gets 413.
        let bytes = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let bytes: Bytes = bytes.await?;
            Ok(parse_authed(&req, &bytes)?)
        })
    }
}

fn parse_authed<T: DeserializeOwned>(
    req: &HttpRequest,
    bytes: &[u8],
) -> Result<AuthedJson<T>, ApiError> {
    let mut value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("malformed_json", format!("malformed JSON: {e}")))?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| ApiError::unprocessable("invalid_body", "the body must be a JSON object"))?;
    let caller = match object.remove(AUTH_FIELD) {
        Some(auth_value) => {
            let auth = service_auth(req)?;
            if !service_token_state(req, auth)? {
                return Err(ApiError::unauthorized(
                    "_auth is accepted only with the service token",
                ));
            }
            let ctx: AuthContext = serde_json::from_value(auth_value)
                .map_err(|e| ApiError::unauthorized(format!("invalid _auth: {e}")))?;
            Caller::from(ctx)
        }
        None => caller_from_headers(req)?,
    };
    let body = serde_json::from_value(value)
        .map_err(|e| ApiError::unprocessable("invalid_body", format!("invalid body: {e}")))?;
    Ok(AuthedJson { caller, body })
}
