//! A budget's parts as clients send them (paths, queries, bodies), checked
//! at the edge.

use confab_protocol::budget::{BudgetPeriod, BudgetSubject};
use rust_decimal::Decimal;

use crate::error::ProxyError;
use crate::pricing::nanos_of;

pub fn subject_str(subject: BudgetSubject) -> &'static str {
    match subject {
        BudgetSubject::User => "user",
        BudgetSubject::ApiKey => "api_key",
    }
}

pub fn parse_subject(text: &str) -> Result<BudgetSubject, ProxyError> {
    match text {
        "user" => Ok(BudgetSubject::User),
        "api_key" => Ok(BudgetSubject::ApiKey),
        other => Err(ProxyError::InvalidSubject(clip(other))),
    }
}

pub fn parse_period(text: &str) -> Result<BudgetPeriod, ProxyError> {
    match text {
        "day" => Ok(BudgetPeriod::Day),
        "month" => Ok(BudgetPeriod::Month),
        other => Err(ProxyError::InvalidPeriod(clip(other))),
    }
}

/// 10^15 tokens: far above any real budget (a billion calls of a million
/// tokens), far below where a sum of tokens could overflow a 64-bit count.
pub const MAX_TOKENS: i64 = 1_000_000_000_000_000;

/// 10^9 currency units: far above any real budget, and within what a
/// 64-bit count of nano-units holds (some 9.2 × 10^9 units).
pub const MAX_COST_UNITS: i64 = 1_000_000_000;

pub fn check_tokens(tokens: i64) -> Result<i64, String> {
    if (0..=MAX_TOKENS).contains(&tokens) {
        Ok(tokens)
    } else {
        Err(format!("tokens must be between 0 and {MAX_TOKENS}"))
    }
}

pub fn cost_to_nanos(cost: Decimal) -> Result<i64, String> {
    if cost.is_sign_negative() && !cost.is_zero() {
        return Err("cost must not be negative".into());
    }
    if cost > Decimal::from(MAX_COST_UNITS) {
        return Err(format!("cost must be at most {MAX_COST_UNITS}"));
    }
    nanos_of(cost).ok_or_else(|| "cost is out of range".to_owned())
}

/// Ids of users and API keys are the gateway's (`usr-…`, a key's id): at
/// most this many characters, none of them control characters.
pub const MAX_ID_CHARS: usize = 128;

/// A user's or API key's id from a path, query or body, checked.
pub fn parse_subject_id(id: &str) -> Result<&str, ProxyError> {
    if id.is_empty() || id.chars().count() > MAX_ID_CHARS || id.chars().any(char::is_control) {
        return Err(ProxyError::InvalidId(format!(
            "an id is 1 to {MAX_ID_CHARS} characters, none of them control characters"
        )));
    }
    Ok(id)
}

/// A client's value as an error message shows it: at most 64 characters.
pub fn clip(text: &str) -> String {
    text.chars().take(64).collect()
}
