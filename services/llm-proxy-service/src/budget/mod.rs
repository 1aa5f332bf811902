//! Budgets on LLM use (issue 21), kept beside the usage they limit.
//!
//! A budget limits the tokens (input and output) and the cost (in
//! `[pricing] currency`) that a user, or one of a user's personal API
//! keys, may use in a UTC calendar day or month. Each subject and period
//! has a default from the settings (`[budgets.user]`, `[budgets.api_key]`);
//! a budget stored for one subject and period (`PUT /budgets/…`) replaces
//! the default for that period, its empty limits meaning "no limit of that
//! kind".
//!
//! A limit is reached when the use since the period's start is at or above
//! it. The use is read on each check from the period's usage counter
//! (`store::counters`), which the recorder adds each call to as it writes
//! the call's end: the database every instance writes, so every instance
//! sees every call (DESIGN §15), a moment after it ended (the recorder writes off the request
//! path, `[recording] linger_ms`). A call still in flight counts with what
//! is known of it then: zero. So a budget is a check before each call, not
//! a reservation: calls that start together, or while the last ones are
//! still running, all see the use before them, and the period's total can
//! pass the limit by what they use. The next call is then refused.
//!
//! Who is checked: chat-service asks `GET /budget-status` before a turn;
//! the proxy checks a user calling it directly (an access token, or the
//! gateway's service token without an agent) before anything goes to a
//! provider. An agent's calls are inside a turn already admitted and are
//! never refused: a turn already running finishes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use confab_kit::db::Db;
use confab_protocol::budget::{BudgetLimit, BudgetPeriod, BudgetSubject};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::error::ProxyError;
use crate::pricing::units;
use crate::store::budgets::{self, BudgetRow};
use crate::store::counters::{self, Used};

mod parse;
mod period;

pub use self::parse::{
    MAX_COST_UNITS, MAX_ID_CHARS, MAX_TOKENS, check_tokens, clip, cost_to_nanos, parse_period,
    parse_subject, parse_subject_id, subject_str,
};
pub use self::period::{period_end, period_start, rfc3339};

pub const PERIODS: [BudgetPeriod; 2] = [BudgetPeriod::Day, BudgetPeriod::Month];

/// `[budgets]`: the default limits of every user and every API key.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BudgetSettings {
    #[serde(default)]
    pub user: DefaultLimits,
    #[serde(default)]
    pub api_key: DefaultLimits,
}

/// Limits per period; each absent one is no limit. Costs are in
/// `[pricing] currency`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DefaultLimits {
    #[serde(default)]
    pub day_tokens: Option<i64>,
    #[serde(default)]
    pub day_cost: Option<Decimal>,
    #[serde(default)]
    pub month_tokens: Option<i64>,
    #[serde(default)]
    pub month_cost: Option<Decimal>,
}

/// One period's limits; `None`: no limit of that kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub tokens: Option<i64>,
    pub cost_nanos: Option<i64>,
}

impl Limits {
    pub fn is_unlimited(&self) -> bool {
        self.tokens.is_none() && self.cost_nanos.is_none()
    }

    /// As a refusal names it.
    pub fn as_budget_limit(&self, subject: BudgetSubject, period: BudgetPeriod) -> BudgetLimit {
        BudgetLimit {
            subject,
            period,
            tokens: self.tokens,
            cost: self.cost_nanos.map(units),
        }
    }
}

/// Where a period's limits come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Stored,
    Default,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Stored => "stored",
            Source::Default => "default",
        }
    }
}

/// The limits in force for one subject and period.
#[derive(Debug, Clone, Copy)]
pub struct Effective {
    pub period: BudgetPeriod,
    pub limits: Limits,
    pub source: Source,
}

/// A limit reached: what a 429 `budget_exceeded` says.
#[derive(Debug)]
pub struct Exceeded {
    pub limit: BudgetLimit,
    pub resets_at: DateTime<Utc>,
    /// Seconds until `resets_at`, for `Retry-After`.
    pub retry_after: u64,
    pub message: String,
}

impl Exceeded {
    pub fn resets_at_rfc3339(&self) -> String {
        rfc3339(self.resets_at)
    }
}

/// The budgets in force: the defaults of the settings, and the stored
/// ones read from the database on each look-up.
#[derive(Debug, Clone)]
pub struct Budgets {
    defaults: HashMap<(BudgetSubject, BudgetPeriod), Limits>,
}

impl Budgets {
    pub fn new(settings: &BudgetSettings) -> anyhow::Result<Self> {
        let mut defaults = HashMap::new();
        for (subject, limits) in [
            (BudgetSubject::User, &settings.user),
            (BudgetSubject::ApiKey, &settings.api_key),
        ] {
            let name = subject_str(subject);
            for (period, tokens, cost) in [
                (BudgetPeriod::Day, limits.day_tokens, limits.day_cost),
                (BudgetPeriod::Month, limits.month_tokens, limits.month_cost),
            ] {
                let what = period.as_str();
                let tokens = tokens
                    .map(|tokens| {
                        check_tokens(tokens)
                            .map_err(|e| anyhow::anyhow!("[budgets.{name}] {what}_tokens: {e}"))
                    })
                    .transpose()?;
                let cost_nanos = cost
                    .map(|cost| {
                        cost_to_nanos(cost)
                            .map_err(|e| anyhow::anyhow!("[budgets.{name}] {what}_cost: {e}"))
                    })
                    .transpose()?;
                defaults.insert((subject, period), Limits { tokens, cost_nanos });
            }
        }
        Ok(Self { defaults })
    }

    pub fn default_limits(&self, subject: BudgetSubject, period: BudgetPeriod) -> Limits {
        self.defaults
            .get(&(subject, period))
            .copied()
            .unwrap_or_default()
    }

    /// The limits in force for a subject, day first, then month, and the
    /// stored rows they were read from.
    pub async fn effective(
        &self,
        db: &Db,
        subject: BudgetSubject,
        id: &str,
    ) -> Result<([Effective; 2], Vec<BudgetRow>), ProxyError> {
        let rows = budgets::of(db, subject_str(subject), id).await?;
        let effective =
            PERIODS.map(
                |period| match rows.iter().find(|row| row.period == period.as_str()) {
                    Some(row) => Effective {
                        period,
                        limits: Limits {
                            tokens: row.tokens,
                            cost_nanos: row.cost_nanos,
                        },
                        source: Source::Stored,
                    },
                    None => Effective {
                        period,
                        limits: self.default_limits(subject, period),
                        source: Source::Default,
                    },
                },
            );
        Ok((effective, rows))
    }

    /// Admits a user's request, or refuses it with the first limit
    /// reached: the user's, then the API key's when there is one; in each,
    /// the day's, then the month's.
    pub async fn admit(
        &self,
        db: &Db,
        user_id: &str,
        api_key_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), ProxyError> {
        let mut subjects = vec![(BudgetSubject::User, user_id)];
        if let Some(key) = api_key_id {
            subjects.push((BudgetSubject::ApiKey, key));
        }
        for (subject, id) in subjects {
            let (effective, _) = self.effective(db, subject, id).await?;
            for period in effective {
                if period.limits.is_unlimited() {
                    continue;
                }
                let used = used_in(db, subject, id, None, period.period, now).await?;
                if let Some(exceeded) = reached(subject, &period, used, now) {
                    return Err(ProxyError::BudgetExceeded(Box::new(exceeded)));
                }
            }
        }
        Ok(())
    }
}

/// What `subject` used in the current `period` (its usage counter); only
/// a counter `owner` owns when given (a user reading an API key's budget
/// sees only a key of hers).
pub async fn used_in(
    db: &Db,
    subject: BudgetSubject,
    id: &str,
    owner: Option<&str>,
    period: BudgetPeriod,
    now: DateTime<Utc>,
) -> Result<Used, ProxyError> {
    let start = period_start(period, now).naive_utc();
    Ok(counters::read(db, subject_str(subject), id, period.as_str(), start, owner).await?)
}

/// The refusal, if `used` reached a limit of `budget`.
pub fn reached(
    subject: BudgetSubject,
    budget: &Effective,
    used: Used,
    now: DateTime<Utc>,
) -> Option<Exceeded> {
    let limits = budget.limits;
    let what = match (limits.tokens, limits.cost_nanos) {
        (Some(tokens), _) if used.tokens >= tokens => {
            format!("{} of {tokens} tokens used", used.tokens)
        }
        (_, Some(cost)) if used.cost_nanos >= cost => {
            format!(
                "a cost of {} of {} used",
                units(used.cost_nanos),
                units(cost)
            )
        }
        _ => return None,
    };
    let resets_at = period_end(budget.period, now);
    let retry_after = u64::try_from((resets_at - now).num_seconds())
        .unwrap_or(1)
        .max(1);
    let whose = match subject {
        BudgetSubject::User => "the user's",
        BudgetSubject::ApiKey => "the API key's",
    };
    let period = match budget.period {
        BudgetPeriod::Day => "daily",
        BudgetPeriod::Month => "monthly",
    };
    Some(Exceeded {
        limit: limits.as_budget_limit(subject, budget.period),
        message: format!(
            "{whose} {period} budget is used up ({what}); it resets at {}",
            rfc3339(resets_at)
        ),
        resets_at,
        retry_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn a_limit_is_reached_at_its_value_not_before() {
        let budget = Effective {
            period: BudgetPeriod::Day,
            limits: Limits {
                tokens: Some(100),
                cost_nanos: None,
            },
            source: Source::Default,
        };
        let now = at("2026-12-05T23:59:00Z");
        let used = |tokens| Used {
            tokens,
            cost_nanos: 0,
        };
        assert!(reached(BudgetSubject::User, &budget, used(99), now).is_none());
        let exceeded = reached(BudgetSubject::User, &budget, used(100), now).unwrap();
        assert_eq!(exceeded.retry_after, 60);
        assert_eq!(exceeded.resets_at_rfc3339(), "2026-12-06T00:00:00Z");
        assert_eq!(exceeded.limit.tokens, Some(100));
        assert!(exceeded.message.contains("daily"), "{}", exceeded.message);
    }

    #[test]
    fn a_cost_limit_is_reached_by_the_cost_used() {
        let budget = Effective {
            period: BudgetPeriod::Month,
            limits: Limits {
                tokens: None,
                cost_nanos: Some(5_000),
            },
            source: Source::Stored,
        };
        let now = at("2026-12-05T10:00:00Z");
        let used = Used {
            tokens: 1,
            cost_nanos: 5_000,
        };
        let exceeded = reached(BudgetSubject::ApiKey, &budget, used, now).unwrap();
        assert_eq!(exceeded.limit.cost, Some(0.000005));
        assert_eq!(exceeded.limit.subject, BudgetSubject::ApiKey);
    }

    #[test]
    fn defaults_out_of_range_are_refused_at_start() {
        let settings = BudgetSettings {
            user: DefaultLimits {
                day_tokens: Some(-1),
                ..DefaultLimits::default()
            },
            ..BudgetSettings::default()
        };
        assert!(Budgets::new(&settings).is_err());
    }
}
