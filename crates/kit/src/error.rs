//! The one error type every handler returns, rendered as the JSON error body
//! `{"error":{"code","message","request_id"}}` (DESIGN §11).
//!
//! The cause chain of an internal error is logged, never shown to the client.
//! `request_id` is filled in by the request-id middleware in [`crate::server`],
//! which also turns actix's own plain-text errors (bad JSON, payload too large)
//! into this body.

use std::fmt;

use actix_web::http::StatusCode;

use actix_web::{HttpResponse, ResponseError};
use confab_protocol::budget::BudgetLimit;
use confab_protocol::error::ErrorBody;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Seconds for `Retry-After` (429).
    retry_after: Option<u64>,
    /// The budget a `budget_exceeded` refusal ran into, and when it resets.
    budget: Option<Box<(BudgetLimit, String)>>,
    /// The methods for `Allow` (405).
    allow: Option<Box<str>>,
    source: Option<anyhow::Error>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            budget: None,
            allow: None,
            source: None,
        }
    }

    /// 405: the path is served, by `allow` (`GET, POST`) only.
    pub fn method_not_allowed(allow: &str) -> Self {
        let mut error = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this path answers {allow}"),
        );
        error.allow = Some(allow.into());
        error
    }

    /// Adds `Retry-After` (at least a second) to a refusal.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// Adds the budget a refusal ran into and when it resets (RFC 3339),
    /// shown as `error.limit` and `error.resets_at`.
    pub fn with_budget(mut self, limit: BudgetLimit, resets_at: String) -> Self {
        self.budget = Some(Box::new((limit, resets_at)));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// Also what another user's object answers, so existence does not leak.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn payload_too_large(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// A failure that is ours, not the client's: logged with its cause, shown
    /// to the client as a bare 500.
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        let mut err = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        );
        err.source = Some(source.into());
        err
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The seconds of `Retry-After`, for a refusal that has one (429); a
    /// WebSocket passes it on in its error frame.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// The JSON body for this error, carrying `request_id` when known.
    pub fn body(&self, request_id: Option<&str>) -> ErrorBody {
        let mut body = ErrorBody::new(self.code, self.message.clone());
        body.error.request_id = request_id.map(str::to_owned);
        if let Some(budget) = &self.budget {
            body.error.limit = Some(budget.0.clone());
            body.error.resets_at = Some(budget.1.clone());
        }
        body
    }

    pub(crate) fn response_with(&self, request_id: Option<&str>) -> HttpResponse {
        if let Some(source) = &self.source {
            tracing::error!(error = format!("{source:#}"), request_id, "internal error");
        }
        let mut response = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            response.insert_header(("retry-after", secs.to_string()));
        }
        if let Some(allow) = &self.allow {
            response.insert_header(("allow", &**allow));
        }
        response.json(self.body(request_id))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e.as_ref() as _)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        self.response_with(None)
    }
}

/// A service's error enum: every variant a refusal with its status and
/// code, its `Display` the message the client reads. Each service has one
/// (`error.rs`), mapped to [`ApiError`] here, the same way for all: a 500
/// (a failure of ours) keeps the error as the logged cause and shows the
/// client nothing of it, a 429 carries its `Retry-After`.
pub trait Refusal: std::error::Error + Send + Sync + 'static {
    /// The status and the code clients see in `error.code`.
    fn status_and_code(&self) -> (StatusCode, &'static str);

    /// Seconds for `Retry-After`, for a refusal that has one (429).
    fn retry_after(&self) -> Option<u64> {
        None
    }

    fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    fn status(&self) -> StatusCode {
        self.status_and_code().0
    }
}

impl<R: Refusal> From<R> for ApiError {
    fn from(refusal: R) -> Self {
        let (status, code) = refusal.status_and_code();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            return ApiError::internal(refusal);
        }
        let mut err = ApiError::new(status, code, refusal.to_string());
        err.retry_after = refusal.retry_after().map(|secs| secs.max(1));
        err
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(err: crate::db::DbError) -> Self {
        ApiError::internal(err)
    }
}

/// Maps an error actix produced before a handler ran (a body that is not
/// JSON, too large, a bad path) to an [`ApiError`] with the right status.
pub fn from_actix(err: &actix_web::Error) -> ApiError {
    use actix_web::error::{JsonPayloadError, PayloadError, QueryPayloadError, UrlencodedError};
    if let Some(api) = err.as_error::<ApiError>() {
        return ApiError {
            status: api.status,
            code: api.code,
            message: api.message.clone(),
            retry_after: api.retry_after,
            budget: api.budget.clone(),
            allow: api.allow.clone(),
            source: None,
        };
    }
    if let Some(json) = err.as_error::<JsonPayloadError>() {
        return match json {
            JsonPayloadError::Overflow { limit }
            | JsonPayloadError::OverflowKnownLength { limit, .. } => {
                ApiError::payload_too_large("body_too_large", format!("body exceeds {limit} bytes"))
            }
            JsonPayloadError::ContentType => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ),
            JsonPayloadError::Deserialize(e) if e.is_data() => {
                ApiError::unprocessable("invalid_body", format!("invalid body: {e}"))
            }
            JsonPayloadError::Deserialize(e) => {
                ApiError::bad_request("malformed_json", format!("malformed JSON: {e}"))
            }
            _ => ApiError::bad_request("bad_body", "could not read the request body"),
        };
    }
    if let Some(PayloadError::Overflow) = err.as_error::<PayloadError>() {
        return ApiError::payload_too_large("body_too_large", "body too large");
    }
    if let Some(form) = err.as_error::<UrlencodedError>() {
        return match form {
            UrlencodedError::Overflow { .. } => {
                ApiError::payload_too_large("body_too_large", "body too large")
            }
            other => ApiError::bad_request("bad_form", other.to_string()),
        };
    }
    if let Some(query) = err.as_error::<QueryPayloadError>() {
        return ApiError::bad_request("bad_query", query.to_string());
    }
    // The response's status, not `status_code()`: some errors (actix-ws's
    // handshake refusal) set their status only in the response they build.
    let status = err.error_response().status();
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    };
    let message = if status.is_server_error() {
        "internal server error".to_owned()
    } else {
        err.to_string()
    };
    ApiError::new(status, code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Refused {
        #[error("slow down")]
        Busy,
        #[error("the upstream is down")]
        Down,
        #[error("the disk said no")]
        Ours,
    }

    impl Refusal for Refused {
        fn status_and_code(&self) -> (StatusCode, &'static str) {
            match self {
                Refused::Busy => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
                Refused::Down => (StatusCode::BAD_GATEWAY, "upstream_unavailable"),
                Refused::Ours => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            }
        }

        fn retry_after(&self) -> Option<u64> {
            matches!(self, Refused::Busy).then_some(0)
        }
    }

    #[test]
    fn a_refusal_answers_its_status_code_and_words() {
        let err = ApiError::from(Refused::Down);
        assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(err.code(), "upstream_unavailable");
        assert_eq!(err.message(), "the upstream is down");
        assert_eq!(err.retry_after(), None);
    }

    #[test]
    fn a_rate_limit_waits_at_least_a_second() {
        let err = ApiError::from(Refused::Busy);
        assert_eq!(err.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(err.retry_after(), Some(1));
    }

    #[test]
    fn a_failure_of_ours_shows_nothing_of_it_and_keeps_it_for_the_log() {
        let err = ApiError::from(Refused::Ours);
        assert_eq!(err.code(), "internal");
        assert_eq!(err.message(), "internal server error");
        let cause = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(cause.as_deref(), Some("the disk said no"));
    }
}
