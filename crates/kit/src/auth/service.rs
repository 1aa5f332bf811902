//! The service token and the caller of a request.
//!
//! A request from the gateway carries the shared service token
//! (`X-Service-Token`) and the user's identity, in `_auth` inside a JSON body
//! or in `X-User-Id`/`X-User-Role` headers. Identity from a caller is trusted
//! only together with a valid service token; `_auth` or identity headers
//! without it are refused with 401, never silently ignored. Any other caller
//! presents a user access token (`Authorization: Bearer`), verified by the
//! service's [`JwtVerifier`] when it registered one.

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest, web};
use confab_protocol::auth::{
    API_KEY_ID_HEADER, AUTH_FIELD, AuthContext, Role, SERVICE_TOKEN_HEADER, USER_ID_HEADER,
    USER_NAME_HEADER, USER_ROLE_HEADER,
};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::JwtVerifier;
use crate::error::ApiError;

/// The service's trust configuration, registered as app data.
#[derive(Clone)]
pub struct ServiceAuth {
    /// SHA-256 of the service token; `None` (nothing accepted) when empty.
    digest: Option<Arc<[u8; 32]>>,
}

impl ServiceAuth {
    pub fn new(service_token: impl Into<Arc<str>>) -> Self {
        let token: Arc<str> = service_token.into();
        Self {
            digest: (!token.is_empty()).then(|| Arc::new(Sha256::digest(token.as_bytes()).into())),
        }
    }

    /// Compares digests in constant time: neither the token's bytes nor its
    /// length can be found by timing the answers (comparing the tokens
    /// themselves stops at once when the lengths differ).
    pub fn is_service_token(&self, candidate: &str) -> bool {
        let candidate: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        self.digest
            .as_ref()
            .is_some_and(|digest| bool::from(digest.ct_eq(&candidate)))
    }
}

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    pub username: Option<String>,
    pub role: Role,
    /// The personal API key the user called the gateway with, if any.
    pub api_key_id: Option<String>,
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
            api_key_id: ctx.api_key_id,
        }
    }
}

/// Whether the request carries a valid service token. A present but wrong
/// token is an error, not "absent".
pub fn service_token_state(req: &HttpRequest, auth: &ServiceAuth) -> Result<bool, ApiError> {
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

/// A header's value, when present, text and not empty.
pub fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
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

/// The token of `Authorization: Bearer …`, if any.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    header(req, "authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The caller of a request whose body carried no `_auth`: identity headers
/// with the service token, or a user access token.
async fn caller_without_body_auth(req: &HttpRequest) -> Result<Caller, ApiError> {
    let auth = service_auth(req)?;
    let trusted = service_token_state(req, auth)?;
    let user_id = header(req, USER_ID_HEADER);
    match (trusted, user_id) {
        (true, Some(user_id)) => {
            return Ok(Caller {
                user_id: user_id.to_owned(),
                username: header(req, USER_NAME_HEADER).map(str::to_owned),
                role: header(req, USER_ROLE_HEADER)
                    .map(Role::parse_lenient)
                    .unwrap_or_default(),
                api_key_id: header(req, API_KEY_ID_HEADER).map(str::to_owned),
            });
        }
        (true, None) => {
            return Err(ApiError::unauthorized(
                "the service token must come with X-User-Id or _auth",
            ));
        }
        (false, Some(_)) => {
            return Err(ApiError::unauthorized(
                "identity headers are accepted only with the service token",
            ));
        }
        (false, None) => {}
    }
    let token =
        bearer_token(req).ok_or_else(|| ApiError::unauthorized("authentication required"))?;
    caller_from_token(req, token).await
}

/// The user an access token names, if the service verifies tokens.
pub(crate) async fn caller_from_token(req: &HttpRequest, token: &str) -> Result<Caller, ApiError> {
    let verifier = req
        .app_data::<web::Data<JwtVerifier>>()
        .ok_or_else(|| ApiError::unauthorized("this service does not accept user tokens"))?;
    let claims = verifier.verify(token).await?;
    Ok(Caller {
        user_id: claims.sub,
        username: Some(claims.name),
        role: claims.role,
        api_key_id: None,
    })
}

impl Caller {
    /// The caller of a request without a JSON body: identity from the
    /// gateway (with the service token) or an access token in `token`
    /// (a WebSocket's `?token=`) or `Authorization: Bearer`.
    pub async fn from_request_or_token(
        req: &HttpRequest,
        token: Option<&str>,
    ) -> Result<Self, ApiError> {
        match token {
            Some(token) if req.headers().get(SERVICE_TOKEN_HEADER).is_none() => {
                caller_from_token(req, token).await
            }
            _ => caller_without_body_auth(req).await,
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { caller_without_body_auth(&req).await })
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
            Ok(parse_authed(&req, &bytes).await?)
        })
    }
}

async fn parse_authed<T: DeserializeOwned>(
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
        None => caller_without_body_auth(req).await?,
    };
    let body = serde_json::from_value(value)
        .map_err(|e| ApiError::unprocessable("invalid_body", format!("invalid body: {e}")))?;
    Ok(AuthedJson { caller, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_whole_service_token_is_accepted() {
        let auth = ServiceAuth::new("a-service-token-of-some-length-123");
        assert!(auth.is_service_token("a-service-token-of-some-length-123"));
        for wrong in [
            "",
            "a",
            "a-service-token-of-some-length-12",
            "a-service-token-of-some-length-1234",
            "A-service-token-of-some-length-123",
        ] {
            assert!(!auth.is_service_token(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn an_empty_service_token_accepts_nothing() {
        let auth = ServiceAuth::new("");
        assert!(!auth.is_service_token(""));
        assert!(!auth.is_service_token("x"));
    }
}
