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

/// An administrator's budget for one period of a user or API key
/// (`PUT /api/v1/admin/users/{id}/budget`, `…/api-keys/{id}/budget`), as the
/// gateway takes it; it relays it to llm-proxy-service with the owner's
/// `user_id` added. No other field is accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BudgetChange {
    pub period: BudgetPeriod,
    /// Tokens (input and output) allowed in the period, 0 to 10^15; absent
    /// or null: no token limit. A whole number however written (`5`, `5.0`,
    /// `5e0`), as JSON Schema's `integer` is.
    #[serde(default, deserialize_with = "whole_number")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 1_000_000_000_000_000_i64)
    )]
    pub tokens: Option<i64>,
    /// Cost allowed in the period, in the configured currency, 0 to 10^9;
    /// absent or null: no cost limit.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000_000))]
    pub cost: Option<f64>,
}

/// An optional whole number as JSON Schema's `integer` has it: a JSON
/// number with no fractional part, in i64's range (`5`, `5.0` and `5e0`
/// alike; serde's i64 takes only the first); null is none. For
/// `#[serde(deserialize_with)]`.
pub fn whole_number<'de, D>(field: D) -> Result<Option<i64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::{Error, Unexpected};

    /// 2^63, the first f64 past i64's range.
    const PAST_I64: f64 = 9_223_372_036_854_775_808.0;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Whole(i64),
        Float(f64),
    }

    match Option::<Number>::deserialize(field)? {
        None => Ok(None),
        Some(Number::Whole(n)) => Ok(Some(n)),
        Some(Number::Float(x)) if x.fract() == 0.0 && (-PAST_I64..PAST_I64).contains(&x) => {
            Ok(Some(x as i64))
        }
        Some(Number::Float(x)) => Err(D::Error::invalid_value(
            Unexpected::Float(x),
            &"a whole number",
        )),
    }
}
