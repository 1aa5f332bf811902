//! The LLM budget a turn must be within to start (issue 21).
//!
//! llm-proxy-service records every LLM call, keeps each user's and each
//! API key's usage and budgets, and answers `GET {url}/budget-status?
//! user_id=&api_key_id=` (service token): 200 `{"allowed":true}`, or 429
//! `budget_exceeded` with the limit that was reached. chat-service asks it
//! once per turn, from [`super::budget::TurnBudget::admit`], which every
//! entry point passes before anything is written or sent to an agent; a
//! turn already running is never stopped for budget (its calls are counted
//! and the next turn is refused).
//!
//! Fail closed: when llm-proxy-service cannot be reached or answers
//! anything else, the turn is refused with 503 `budget_unavailable` (and
//! logged), since a limit that cannot be checked is not a limit.
//!
//! Nothing is cached: the answer changes with every call of the user's,
//! made through this instance, another one, or the LLM API directly, and
//! a cached "allowed" would let a user run past their limit for as long
//! as it is kept. One GET on a kept-alive connection costs about a
//! millisecond against the seconds a turn takes.

use std::time::Duration;

use confab_protocol::auth::SERVICE_TOKEN_HEADER;
use confab_protocol::budget::BUDGET_EXCEEDED;
use confab_protocol::error::ErrorBody;
use confab_protocol::ids::UserId;
use reqwest::StatusCode;
use serde::Deserialize;

use crate::error::{ChatError, OverBudget};

/// How long a budget check may take: 5 s, long enough for a proxy under
/// load, short enough that a hung one refuses turns quickly rather than
/// holding every turn start.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// `Retry-After` of a refusal whose answer named no time to wait: a minute.
const DEFAULT_RETRY_SECS: u64 = 60;

/// `[budget]`: where llm-proxy-service is, and whether to ask it.
#[derive(Debug, Clone, Deserialize)]
pub struct BudgetSettings {
    /// llm-proxy-service's base URL.
    pub url: String,
    /// `false` starts turns without asking (tests without llm-proxy, a
    /// deployment without budgets).
    pub enabled: bool,
}

/// The check, with chat-service's HTTP client and service token.
pub struct LlmBudget {
    http: reqwest::Client,
    /// The `budget-status` endpoint, `None` when checks are off.
    status_url: Option<String>,
    service_token: String,
}

#[derive(Deserialize)]
struct Status {
    allowed: bool,
}

impl LlmBudget {
    pub fn new(settings: &BudgetSettings, http: reqwest::Client, service_token: &str) -> Self {
        Self {
            http,
            status_url: settings
                .enabled
                .then(|| format!("{}/budget-status", settings.url.trim_end_matches('/'))),
            service_token: service_token.to_owned(),
        }
    }

    /// Whether `user_id`, calling with the API key `api_key_id` (if any),
    /// may start a turn: 429 `budget_exceeded` when a budget of theirs is
    /// spent, 503 `budget_unavailable` when that cannot be known.
    pub async fn check(&self, user_id: &UserId, api_key_id: Option<&str>) -> Result<(), ChatError> {
        let Some(url) = &self.status_url else {
            return Ok(());
        };
        let mut query = vec![("user_id", user_id.as_str())];
        if let Some(key) = api_key_id {
            query.push(("api_key_id", key));
        }
        let answer = self
            .http
            .get(url)
            .query(&query)
            .header(SERVICE_TOKEN_HEADER, &self.service_token)
            .timeout(CHECK_TIMEOUT)
            .send()
            .await;
        let response = match answer {
            Ok(response) => response,
            Err(err) => {
                tracing::error!(error = %err, url, "llm-proxy-service cannot be reached for a budget check; the turn is refused");
                return Err(ChatError::BudgetUnavailable);
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = response.bytes().await.unwrap_or_default();
        match status {
            StatusCode::OK => match serde_json::from_slice::<Status>(&body) {
                Ok(Status { allowed: true }) => Ok(()),
                _ => Err(unexpected(status, &body)),
            },
            StatusCode::TOO_MANY_REQUESTS => {
                let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(&body) else {
                    return Err(unexpected(status, &body));
                };
                let (BUDGET_EXCEEDED, Some(limit)) = (error.code.as_str(), error.limit) else {
                    return Err(unexpected(status, &body));
                };
                let resets_at = error.resets_at.unwrap_or_default();
                let retry_after = retry_after
                    .or_else(|| seconds_until(&resets_at))
                    .unwrap_or(DEFAULT_RETRY_SECS);
                Err(ChatError::BudgetExceeded(Box::new(OverBudget {
                    message: error.message,
                    limit,
                    resets_at,
                    retry_after,
                })))
            }
            _ => Err(unexpected(status, &body)),
        }
    }
}

/// An answer that says neither yes nor no: logged, and the turn refused.
fn unexpected(status: StatusCode, body: &[u8]) -> ChatError {
    let body = String::from_utf8_lossy(&body[..body.len().min(512)]);
    tracing::error!(%status, %body, "llm-proxy-service answered a budget check in an unexpected way; the turn is refused");
    ChatError::BudgetUnavailable
}

/// Whole seconds from now until `at` (RFC 3339), at least one.
fn seconds_until(at: &str) -> Option<u64> {
    let at = chrono::DateTime::parse_from_rfc3339(at).ok()?;
    let secs = (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds();
    Some(u64::try_from(secs).unwrap_or(0).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_checked_at_llm_proxys_address_unless_turned_off() {
        use confab_kit::settings::{ServiceSettings, load_from};
        let defaults = crate::Settings::defaults().unwrap();
        assert!(defaults.budget.enabled);
        assert_eq!(defaults.budget.url, "http://127.0.0.1:8006");
        let env = [
            ("CONFAB__BUDGET__ENABLED", "false"),
            ("CONFAB__BUDGET__URL", "http://llm-proxy:8006"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let set: crate::Settings = load_from(crate::Settings::DEFAULTS, None, env).unwrap();
        assert!(!set.budget.enabled);
        assert_eq!(set.budget.url, "http://llm-proxy:8006");
    }

    #[test]
    fn the_wait_is_the_time_left_until_the_budget_resets() {
        let in_an_hour = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
        let wait = seconds_until(&in_an_hour).unwrap();
        assert!((3590..=3600).contains(&wait), "{wait}");
        assert_eq!(seconds_until("2000-01-01T00:00:00Z"), Some(1));
        assert_eq!(seconds_until("tomorrow"), None);
    }

    #[tokio::test]
    async fn with_checks_off_every_turn_is_within_budget() {
        let settings = BudgetSettings {
            url: "http://127.0.0.1:1".into(),
            enabled: false,
        };
        let budget = LlmBudget::new(&settings, reqwest::Client::new(), "token");
        assert!(budget.check(&"usr-1".into(), Some("key-1")).await.is_ok());
    }

    #[tokio::test]
    async fn an_unreachable_proxy_refuses_the_turn() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let settings = BudgetSettings {
            url: format!("http://127.0.0.1:{port}/"),
            enabled: true,
        };
        let budget = LlmBudget::new(&settings, reqwest::Client::new(), "token");
        let refused = budget.check(&"usr-1".into(), None).await.unwrap_err();
        assert!(matches!(refused, ChatError::BudgetUnavailable), "{refused}");
    }
}
