//! Every refusal llm-proxy-service answers, each a variant, mapped to its
//! status and code in one place (its [`Refusal`] impl, which kit maps to
//! [`confab_kit::ApiError`] the same way in every service).
//!
//! What an upstream model answered is not one of these: the proxy passes an
//! upstream's own refusal on as it came (`call::respond`).

use actix_web::http::StatusCode;
use confab_kit::bus::BusError;
use confab_kit::db::DbError;
use confab_kit::{ApiError, Refusal};
use confab_protocol::budget::BUDGET_EXCEEDED;

use crate::budget::Exceeded;

/// `Retry-After` when the bus is unreachable.
const BUS_RETRY_SECS: u64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("invalid service token")]
    InvalidServiceToken,
    #[error("this endpoint is for the services: X-Service-Token is required")]
    ServiceTokenRequired,
    #[error("an agent key or access token is required as Authorization: Bearer")]
    CredentialRequired,
    #[error("unknown agent key or invalid access token")]
    UnknownCredential,
    /// Reading other users' rows or events, which only an admin may.
    #[error("only an admin may {0}")]
    AdminsOnly(&'static str),
    #[error("model '{0}' not found")]
    UnknownModel(String),
    #[error("malformed JSON: {0}")]
    MalformedJson(#[source] serde_json::Error),
    #[error("the body must be a JSON object")]
    BodyNotObject,
    #[error("invalid request: {0}")]
    InvalidRequest(#[source] serde_json::Error),
    #[error("messages must not be empty")]
    NoMessages,
    #[error("limit must be between 1 and {max}")]
    InvalidLimit { max: i64 },
    #[error("since must be a seq (0 or more)")]
    InvalidSince,
    #[error("llm call not found")]
    CallNotFound,
    #[error("budget not found")]
    BudgetNotFound,
    /// `from`/`to` of a usage query.
    #[error("{0}")]
    InvalidRange(String),
    #[error("group_by must be one of day, agent, model, conversation, api_key, user; got '{0}'")]
    InvalidGroupBy(String),
    /// A query parameter that is missing, or that does not go with another.
    #[error("{0}")]
    InvalidQuery(String),
    #[error("the subject of a budget is 'user' or 'api_key'; got '{0}'")]
    InvalidSubject(String),
    #[error("{0}")]
    InvalidId(String),
    #[error("period must be 'day' or 'month'; got '{0}'")]
    InvalidPeriod(String),
    /// A budget body that parsed but cannot be stored.
    #[error("invalid budget: {0}")]
    InvalidBudget(String),
    /// A user's or API key's budget is used up (HTTP 429 with the limit
    /// and when it resets: [`ProxyError::into_api`]).
    #[error("{}", .0.message)]
    BudgetExceeded(Box<Exceeded>),
    #[error("too many trace subscriptions open: at most {limit} per user; close one first")]
    TooManySubscriptions { limit: usize, retry_after: u64 },
    /// Every upstream of the model failed before answering.
    #[error("no upstream could answer: {0}")]
    NoUpstream(String),
    #[error(transparent)]
    Db(#[from] DbError),
    /// The bus between instances did not answer (trace subscriptions).
    #[error("the trace stream is unavailable: {0}")]
    Bus(#[from] BusError),
}

impl Refusal for ProxyError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        use ProxyError as E;
        use StatusCode as S;
        match self {
            E::InvalidServiceToken
            | E::ServiceTokenRequired
            | E::CredentialRequired
            | E::UnknownCredential => (S::UNAUTHORIZED, "unauthorized"),
            E::AdminsOnly(_) => (S::FORBIDDEN, "forbidden"),
            E::UnknownModel(_) | E::CallNotFound | E::BudgetNotFound => (S::NOT_FOUND, "not_found"),
            E::MalformedJson(_) => (S::BAD_REQUEST, "malformed_json"),
            E::BodyNotObject | E::InvalidRequest(_) | E::NoMessages => {
                (S::UNPROCESSABLE_ENTITY, "invalid_body")
            }
            E::InvalidLimit { .. } => (S::UNPROCESSABLE_ENTITY, "invalid_limit"),
            E::InvalidSince => (S::UNPROCESSABLE_ENTITY, "invalid_since"),
            E::InvalidRange(_) => (S::BAD_REQUEST, "invalid_range"),
            E::InvalidGroupBy(_) => (S::BAD_REQUEST, "invalid_group_by"),
            E::InvalidQuery(_) => (S::BAD_REQUEST, "invalid_query"),
            E::InvalidSubject(_) => (S::BAD_REQUEST, "invalid_subject"),
            E::InvalidId(_) => (S::BAD_REQUEST, "invalid_id"),
            E::InvalidPeriod(_) => (S::BAD_REQUEST, "invalid_period"),
            E::InvalidBudget(_) => (S::UNPROCESSABLE_ENTITY, "invalid_body"),
            E::BudgetExceeded(_) => (S::TOO_MANY_REQUESTS, BUDGET_EXCEEDED),
            E::TooManySubscriptions { .. } => (S::TOO_MANY_REQUESTS, "rate_limited"),
            E::NoUpstream(_) => (S::BAD_GATEWAY, "upstream_unavailable"),
            E::Db(_) => (S::INTERNAL_SERVER_ERROR, "internal"),
            E::Bus(_) => (S::SERVICE_UNAVAILABLE, "unavailable"),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ProxyError::TooManySubscriptions { retry_after, .. } => Some(*retry_after),
            ProxyError::BudgetExceeded(exceeded) => Some(exceeded.retry_after),
            // The bus reconnects by itself; soon is a fair guess.
            ProxyError::Bus(_) => Some(BUS_RETRY_SECS),
            _ => None,
        }
    }
}

impl ProxyError {
    /// The refusal as kit renders it, with what [`Refusal`] cannot carry:
    /// the budget a `budget_exceeded` ran into (`error.limit`) and when it
    /// resets (`error.resets_at`). Use it where a budget refusal may come
    /// from; `?` alone would drop them.
    pub fn into_api(self) -> ApiError {
        match self {
            ProxyError::BudgetExceeded(exceeded) => {
                let limit = exceeded.limit.clone();
                let resets_at = exceeded.resets_at_rfc3339();
                ApiError::from(ProxyError::BudgetExceeded(exceeded)).with_budget(limit, resets_at)
            }
            other => ApiError::from(other),
        }
    }
}

impl From<ProxyError> for actix_web::Error {
    fn from(err: ProxyError) -> Self {
        err.into_api().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_keeps_its_code_status_and_words() {
        let api = ApiError::from(ProxyError::UnknownModel("builtin/nope".into()));
        assert_eq!(api.status(), StatusCode::NOT_FOUND);
        assert_eq!(api.code(), "not_found");
        assert_eq!(api.message(), "model 'builtin/nope' not found");
    }

    #[test]
    fn a_full_subscription_count_carries_its_wait() {
        let api = ApiError::from(ProxyError::TooManySubscriptions {
            limit: 8,
            retry_after: 5,
        });
        assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(api.retry_after(), Some(5));
    }
}
