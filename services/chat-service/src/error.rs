//! Every refusal chat-service answers, each a variant, mapped to its status
//! and code in one place (its [`Refusal`] impl, which kit maps to
//! [`confab_kit::ApiError`] the same way in every service).
//!
//! Code below the handlers returns a `ChatError`; `?` in a handler turns it
//! into the `ApiError` the JSON error body and the WebSocket `error` frames
//! are made from. The messages are what a client shows, so they say what to
//! do next where there is something to do.

use actix_web::http::StatusCode;
use confab_kit::db::DbError;
use confab_kit::{ApiError, Refusal};
use confab_protocol::budget::BudgetLimit;

use crate::tree_patch::PatchRefused;

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// Also what another user's conversation answers, so existence does not
    /// leak (DESIGN §4).
    #[error("conversation not found")]
    ConversationNotFound,
    /// [`Self::ConversationNotFound`] in the words of the seed APIs that call
    /// a conversation a session.
    #[error("session not found")]
    SessionNotFound,
    #[error("the message is empty")]
    EmptyMessage,
    #[error("the message has {chars} characters; at most {max} are allowed")]
    MessageTooLong { chars: usize, max: usize },
    #[error("the title is empty")]
    EmptyTitle,
    #[error("the title has {chars} characters; at most {max} are allowed")]
    TitleTooLong { chars: usize, max: usize },
    #[error("limit must be a whole number from 1 to {max}")]
    InvalidLimit { max: i64 },
    #[error("cursor is not one this service handed out; start again without it")]
    InvalidCursor,
    /// A `Last-Event-ID` that names no event of the stream; the text says
    /// which ids that stream hands out.
    #[error("{0}")]
    BadLastEventId(&'static str),
    #[error("no agent '{0}' is registered")]
    UnknownAgent(String),
    /// The conversation's agent was removed from the settings since.
    #[error("the conversation's agent '{0}' is not registered")]
    AgentGone(String),
    #[error("the model '{0}' does not exist: models are the registered agents")]
    ModelNotFound(String),
    #[error("the conversation is with '{agent}', not '{model}'")]
    ModelMismatch { agent: String, model: String },
    #[error("messages has no user message")]
    NoUserMessage,
    #[error("{0} is not text")]
    HeaderNotText(&'static str),
    #[error("metadata.conversation_id must be a conversation id")]
    InvalidConversationId,
    #[error("X-Response-Format must be 'openai' or 'v0.3', or absent for 'openai'")]
    UnknownResponseFormat,
    #[error("a reply is still being written in this conversation; wait for it or cancel it")]
    TurnInFlight,
    #[error("no reply is being written in this conversation")]
    NoTurnInFlight,
    #[error("this conversation has no reply to re-attach to")]
    NoTurn,
    #[error(
        "you have {limit} replies being written already, the most at once; wait for one to finish"
    )]
    TooManyTurnsInFlight { limit: usize, retry_after: u64 },
    #[error("too many messages this minute; retry in {retry_after} s")]
    TooManyTurnsThisMinute { retry_after: u64 },
    #[error("too many conversations followed at once: at most {limit} per user; close one first")]
    TooManyFollowed { limit: usize, retry_after: u64 },
    /// The user (or the API key they called with) spent their LLM budget;
    /// in words of llm-proxy-service, which keeps the budgets.
    #[error("{}", .0.message)]
    BudgetExceeded(Box<OverBudget>),
    /// llm-proxy-service could not say whether the turn is within budget:
    /// the turn is refused rather than run past a limit unchecked.
    #[error("the LLM budget cannot be checked just now; try again shortly")]
    BudgetUnavailable,
    /// An internal endpoint asked without the service token.
    #[error("this endpoint takes the service token")]
    ServiceTokenRequired,
    /// A WebSocket frame that needs a conversation before `init_session`.
    #[error("send init_session first")]
    NoSession,
    #[error("this socket is attached to another conversation; open a new socket")]
    SessionExists,
    #[error(transparent)]
    Patch(#[from] PatchRefused),
    #[error(transparent)]
    Db(#[from] DbError),
    /// The other instances cannot be reached: a turn cannot be claimed.
    #[error("the service is cut off from its other instances; try again shortly")]
    Bus(#[from] confab_kit::bus::BusError),
    /// Ours, not the client's: logged with its cause, answered as a bare 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Refusal for ChatError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        use ChatError as E;
        match self {
            E::ConversationNotFound | E::SessionNotFound => (StatusCode::NOT_FOUND, "not_found"),
            E::EmptyMessage => (StatusCode::UNPROCESSABLE_ENTITY, "empty_message"),
            E::MessageTooLong { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "message_too_long"),
            E::EmptyTitle => (StatusCode::UNPROCESSABLE_ENTITY, "empty_title"),
            E::TitleTooLong { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "title_too_long"),
            E::InvalidLimit { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_limit"),
            E::InvalidCursor => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_cursor"),
            E::BadLastEventId(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bad_last_event_id"),
            // A named agent that does not exist is not found, as OpenAI
            // answers an unknown `model`.
            E::UnknownAgent(_) | E::AgentGone(_) => (StatusCode::NOT_FOUND, "unknown_agent"),
            E::ModelNotFound(_) => (StatusCode::NOT_FOUND, "model_not_found"),
            E::ModelMismatch { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "model_mismatch"),
            E::NoUserMessage => (StatusCode::UNPROCESSABLE_ENTITY, "no_user_message"),
            E::HeaderNotText(_) => (StatusCode::BAD_REQUEST, "invalid_header"),
            E::InvalidConversationId => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_conversation_id")
            }
            E::UnknownResponseFormat => (StatusCode::BAD_REQUEST, "unknown_response_format"),
            E::TurnInFlight => (StatusCode::CONFLICT, "turn_in_flight"),
            E::NoTurnInFlight => (StatusCode::CONFLICT, "no_turn_in_flight"),
            E::NoTurn => (StatusCode::NOT_FOUND, "no_turn"),
            E::TooManyTurnsInFlight { .. }
            | E::TooManyTurnsThisMinute { .. }
            | E::TooManyFollowed { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            E::BudgetExceeded(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                confab_protocol::budget::BUDGET_EXCEEDED,
            ),
            E::BudgetUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "budget_unavailable"),
            E::ServiceTokenRequired => (StatusCode::UNAUTHORIZED, "unauthorized"),
            E::NoSession => (StatusCode::CONFLICT, "no_session"),
            E::SessionExists => (StatusCode::CONFLICT, "session_exists"),
            E::Patch(refused @ PatchRefused::Invalid(_)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, refused.code())
            }
            E::Patch(refused) => (StatusCode::PAYLOAD_TOO_LARGE, refused.code()),
            E::Bus(_) => (StatusCode::SERVICE_UNAVAILABLE, "bus_unavailable"),
            E::Db(_) | E::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ChatError::TooManyTurnsInFlight { retry_after, .. }
            | ChatError::TooManyTurnsThisMinute { retry_after }
            | ChatError::TooManyFollowed { retry_after, .. } => Some(*retry_after),
            ChatError::BudgetExceeded(over) => Some(over.retry_after),
            _ => None,
        }
    }
}

/// A budget llm-proxy-service says is spent: what it said, the limit, when
/// the limit's period ends (RFC 3339) and the seconds until then.
#[derive(Debug, Clone, PartialEq)]
pub struct OverBudget {
    pub message: String,
    pub limit: BudgetLimit,
    pub resets_at: String,
    pub retry_after: u64,
}

/// Why a turn was not started: a [`ChatError`], answered as every other.
/// A type of its own because a refusal for budget shows the limit it ran
/// into (`error.limit`, `error.resets_at`), which kit's [`Refusal`] mapping
/// has no place for: `?` on it in a handler goes through the `From` below,
/// which adds them.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct TurnRefused(#[from] pub ChatError);

impl From<TurnRefused> for ApiError {
    fn from(TurnRefused(refusal): TurnRefused) -> Self {
        let budget = match &refusal {
            ChatError::BudgetExceeded(over) => Some((over.limit.clone(), over.resets_at.clone())),
            _ => None,
        };
        let api = ApiError::from(refusal);
        match budget {
            Some((limit, resets_at)) => api.with_budget(limit, resets_at),
            None => api,
        }
    }
}

impl From<confab_kit::bus::BusError> for TurnRefused {
    fn from(err: confab_kit::bus::BusError) -> Self {
        Self(ChatError::from(err))
    }
}

#[cfg(test)]
mod tests {
    use confab_kit::ApiError;

    use super::*;

    #[test]
    fn a_turn_refused_for_budget_shows_the_limit_and_when_it_resets() {
        use confab_protocol::budget::{BudgetPeriod, BudgetSubject};
        let limit = BudgetLimit {
            subject: BudgetSubject::ApiKey,
            period: BudgetPeriod::Day,
            tokens: None,
            cost: Some(2.5),
        };
        let over = OverBudget {
            message: "the API key's daily budget is spent".into(),
            limit: limit.clone(),
            resets_at: "2026-12-06T00:00:00Z".into(),
            retry_after: 3600,
        };
        let api = ApiError::from(TurnRefused(ChatError::BudgetExceeded(Box::new(over))));
        assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(api.code(), "budget_exceeded");
        assert_eq!(api.retry_after(), Some(3600));
        let body = api.body(Some("req-1"));
        assert_eq!(body.error.limit, Some(limit));
        assert_eq!(
            body.error.resets_at.as_deref(),
            Some("2026-12-06T00:00:00Z")
        );
        assert_eq!(body.error.message, "the API key's daily budget is spent");

        let unavailable = ApiError::from(TurnRefused(ChatError::BudgetUnavailable));
        assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(unavailable.code(), "budget_unavailable");
        assert_eq!(unavailable.body(None).error.limit, None);
    }

    #[test]
    fn a_refusal_keeps_its_code_status_and_words() {
        let api = ApiError::from(ChatError::MessageTooLong { chars: 12, max: 10 });
        assert_eq!(api.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(api.code(), "message_too_long");
        assert_eq!(
            api.message(),
            "the message has 12 characters; at most 10 are allowed"
        );
    }
}
