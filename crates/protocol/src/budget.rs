//! Budgets on LLM use (issue 21): what a refusal says about the limit that
//! was reached, shared by llm-proxy-service, which keeps budgets and usage,
//! and chat-service, which asks it before a turn starts.

use serde::{Deserialize, Serialize};

/// The error code of a refusal for budget (HTTP 429).
pub const BUDGET_EXCEEDED: &str = "budget_exceeded";

/// A budget's window: the UTC calendar day or month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum BudgetPeriod {
    Day,
    Month,
}

impl BudgetPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetPeriod::Day => "day",
            BudgetPeriod::Month => "month",
        }
    }
}

/// Whose use a budget limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BudgetSubject {
    User,
    ApiKey,
}

/// The limit a refused request ran into, as the error body shows it
/// (`error.limit`), with `error.resets_at` beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BudgetLimit {
    pub subject: BudgetSubject,
    pub period: BudgetPeriod,
    /// Tokens (input and output) allowed in the period; `None`: no token limit.
    pub tokens: Option<i64>,
    /// Cost allowed in the period, in the configured currency; `None`: no
    /// cost limit.
    pub cost: Option<f64>,
}
