//! Every refusal the gateway answers, each a variant, mapped to its status
//! and code in one place (its [`Refusal`] impl, which kit maps to
//! [`confab_kit::ApiError`] the same way in every service).
//!
//! Code below the handlers returns a `GatewayError`; `?` in a handler turns
//! it into the `ApiError` the JSON error body is made from. A parse error
//! a client caused keeps its cause as the source and says it in the message,
//! so the client can fix the request.

use actix_web::http::StatusCode;
use confab_kit::Refusal;
use confab_kit::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("a username has 3 to 32 characters: letters, digits, '_', '.' or '-'")]
    InvalidUsername,
    #[error("a password has at least 8 characters")]
    WeakPassword,
    #[error("a password has at most 1024 characters")]
    PasswordTooLong,
    #[error("that username is taken")]
    UsernameTaken,
    #[error("wrong username or password")]
    WrongCredentials,
    /// A valid access token whose user was deleted since.
    #[error("the token's user no longer exists")]
    UserGone,
    #[error("a bearer token is required")]
    BearerRequired,
    /// A WebSocket, which a browser cannot give headers, may carry it in the
    /// query.
    #[error("a bearer token or ?token= is required")]
    BearerOrQueryRequired,
    #[error("the service token or an administrator's access token is required")]
    ServiceOrAdminRequired,
    #[error("the service token is required")]
    ServiceTokenRequired,
    /// Said only after the right password, so it tells a stranger nothing.
    #[error("this account is disabled")]
    AccountDisabled,
    #[error("invalid or expired token")]
    InvalidToken,
    #[error("administrators only")]
    AdminsOnly,
    /// Keys never manage keys, sign out or administer (see `api_keys`).
    #[error("an API key cannot be used here: sign in (an access token or the console's session)")]
    ApiKeyNotAllowed,
    #[error("this API key's scopes ({scopes}) do not allow {method} on {route}")]
    InsufficientScope {
        scopes: String,
        method: String,
        route: String,
    },
    #[error("invalid body: {0}")]
    InvalidRequest(&'static str),
    #[error("at most {0} API keys per user; revoke one first")]
    TooManyApiKeys(usize),
    #[error("API key not found")]
    ApiKeyNotFound,
    #[error("user not found")]
    UserNotFound,
    #[error("session not found")]
    SessionNotFound,
    /// Keeps at least the acting admin an enabled admin.
    #[error("an admin cannot disable, demote or delete her own account")]
    OwnAccount,
    /// The reset would end the acting admin's own sessions; her own
    /// password is changed with the current one, keeping this session.
    #[error("an admin changes her own password with POST /api/v1/auth/password")]
    OwnPassword,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("invalid query: {0}")]
    InvalidQuery(&'static str),
    #[error(
        "a request signed in by the console's cookies must come from the console's own site: \
         send Origin with this gateway's origin (or one of [browser] trusted_origins), or, \
         without an Origin, the header X-Confab-Client: console"
    )]
    CsrfRejected,
    #[error("this refresh token was already used; every session of its login is now signed out")]
    RefreshTokenReused,
    #[error("this refresh token was revoked")]
    RefreshTokenRevoked,
    #[error("this refresh token expired")]
    RefreshTokenExpired,
    #[error("unknown refresh token")]
    UnknownRefreshToken,
    #[error("the token's user no longer exists")]
    RefreshTokenUserGone,
    #[error("invalid body: missing field `refresh_token`")]
    MissingRefreshToken,
    #[error("give the refresh_token to sign out, or everywhere: true")]
    NothingToSignOut,
    #[error("only grant_type={0} is supported here")]
    UnsupportedGrantType(&'static str),
    #[error("malformed JSON: {0}")]
    MalformedJson(#[source] serde_json::Error),
    #[error("invalid body: {0}")]
    InvalidBody(#[source] serde_json::Error),
    #[error("invalid form: {0}")]
    InvalidForm(#[source] serde_urlencoded::de::Error),
    #[error("the body must be a JSON object")]
    BodyNotObject,
    /// A body that carries its own `_auth` is rewritten whole, which needs
    /// every value built; this one has a value serde_json cannot build.
    #[error("a body that names _auth is rewritten whole, and this one cannot be: {0}")]
    UnsupportedJson(#[source] serde_json::Error),
    #[error("route not found")]
    NoRoute,
    #[error("unsupported method")]
    BadMethod,
    #[error("bad path: {0}")]
    BadPath(&'static str),
    #[error("the path cannot be forwarded")]
    UnforwardablePath,
    #[error("invalid Content-Length")]
    BadContentLength,
    #[error("body exceeds {0} bytes")]
    BodyTooLarge(usize),
    #[error("{0}")]
    BadBody(#[source] actix_web::error::PayloadError),
    #[error("the upstream did not answer in time")]
    UpstreamTimeout,
    #[error("the upstream did not answer the WebSocket handshake in time")]
    HandshakeTimeout,
    #[error("the upstream service is unavailable")]
    UpstreamUnavailable,
    #[error("another rotation is in progress; retry")]
    RotationInProgress,
    #[error("too many {what}; retry in {retry_after} s")]
    RateLimited {
        what: &'static str,
        retry_after: u64,
    },
    #[error(transparent)]
    Db(#[from] DbError),
    /// Ours, not the client's: logged with its cause, answered as a bare 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Refusal for GatewayError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        use GatewayError as E;
        use StatusCode as S;
        match self {
            E::InvalidUsername => (S::UNPROCESSABLE_ENTITY, "invalid_username"),
            E::WeakPassword => (S::UNPROCESSABLE_ENTITY, "weak_password"),
            E::PasswordTooLong => (S::UNPROCESSABLE_ENTITY, "invalid_password"),
            E::UsernameTaken => (S::CONFLICT, "username_taken"),
            E::WrongCredentials
            | E::UserGone
            | E::BearerRequired
            | E::BearerOrQueryRequired
            | E::ServiceOrAdminRequired
            | E::ServiceTokenRequired
            | E::InvalidToken => (S::UNAUTHORIZED, "unauthorized"),
            E::AccountDisabled => (S::FORBIDDEN, "account_disabled"),
            E::AdminsOnly => (S::FORBIDDEN, "forbidden"),
            E::ApiKeyNotAllowed => (S::FORBIDDEN, "api_key_not_allowed"),
            E::InsufficientScope { .. } => (S::FORBIDDEN, "insufficient_scope"),
            E::InvalidRequest(_) => (S::UNPROCESSABLE_ENTITY, "invalid_body"),
            E::TooManyApiKeys(_) => (S::CONFLICT, "too_many_api_keys"),
            E::ApiKeyNotFound | E::UserNotFound | E::SessionNotFound => (S::NOT_FOUND, "not_found"),
            E::OwnAccount | E::OwnPassword => (S::CONFLICT, "own_account"),
            E::WrongPassword => (S::FORBIDDEN, "wrong_password"),
            E::InvalidQuery(_) => (S::BAD_REQUEST, "bad_query"),
            E::CsrfRejected => (S::FORBIDDEN, "csrf_rejected"),
            E::RefreshTokenReused => (S::UNAUTHORIZED, "refresh_token_reused"),
            E::RefreshTokenRevoked => (S::UNAUTHORIZED, "refresh_token_revoked"),
            E::RefreshTokenExpired => (S::UNAUTHORIZED, "refresh_token_expired"),
            E::UnknownRefreshToken | E::RefreshTokenUserGone => {
                (S::UNAUTHORIZED, "invalid_refresh_token")
            }
            E::MissingRefreshToken
            | E::NothingToSignOut
            | E::InvalidBody(_)
            | E::InvalidForm(_)
            | E::BodyNotObject => (S::UNPROCESSABLE_ENTITY, "invalid_body"),
            E::UnsupportedGrantType(_) => (S::BAD_REQUEST, "unsupported_grant_type"),
            E::MalformedJson(_) => (S::BAD_REQUEST, "malformed_json"),
            E::UnsupportedJson(_) => (S::BAD_REQUEST, "unsupported_json"),
            E::NoRoute => (S::NOT_FOUND, "not_found"),
            E::BadMethod => (S::BAD_REQUEST, "bad_method"),
            E::BadPath(_) | E::UnforwardablePath => (S::BAD_REQUEST, "bad_path"),
            E::BadContentLength => (S::BAD_REQUEST, "bad_content_length"),
            E::BodyTooLarge(_) => (S::PAYLOAD_TOO_LARGE, "body_too_large"),
            E::BadBody(_) => (S::BAD_REQUEST, "bad_body"),
            E::UpstreamTimeout | E::HandshakeTimeout => (S::GATEWAY_TIMEOUT, "upstream_timeout"),
            E::UpstreamUnavailable => (S::BAD_GATEWAY, "upstream_unavailable"),
            E::RotationInProgress => (S::CONFLICT, "rotation_in_progress"),
            E::RateLimited { .. } => (S::TOO_MANY_REQUESTS, "rate_limited"),
            E::Db(_) | E::Internal(_) => (S::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            GatewayError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use confab_kit::ApiError;

    use super::*;

    #[test]
    fn a_refusal_keeps_its_code_status_and_words() {
        let api = ApiError::from(GatewayError::BodyTooLarge(1024));
        assert_eq!(api.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(api.code(), "body_too_large");
        assert_eq!(api.message(), "body exceeds 1024 bytes");
    }
}
