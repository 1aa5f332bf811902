//! `GET /usage?from=&to=&group_by=&split_by=&all_users=&user_id=`: the
//! caller's LLM use and its cost, summed by day, agent, model,
//! conversation, API key or (an admin's report over every user) user, and
//! with `split_by` (another of those) within each group by a second one:
//! the console's chart of days by agent or by model. Items then carry
//! `split` beside `key`.
//!
//! `from` (inclusive) and `to` (exclusive) are RFC 3339 or `YYYY-MM-DD`
//! (UTC midnight); by default the last 30 days, at most 366. Calls still
//! in flight are left out. Answer:
//!
//! ```json
//! {"currency":"USD","from":"…","to":"…","group_by":"day",
//!  "items":[{"key":"2026-12-05","calls":3,"input_tokens":42,"cached_input_tokens":0,
//!            "output_tokens":17,"cost":0.000123,"unpriced_calls":0}],
//!  "total":{"calls":3,…}}
//! ```
//!
//! `key` is null for calls without the attribute grouped by (a call made
//! without an API key, say); `cost` sums the known costs, null only when
//! every call was unpriced. Sums are taken over the integer nano-units, so
//! they are exact. Items are in key order (days ascending), null last.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::error::ErrorBody;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::budget::clip;
use crate::error::ProxyError;
use crate::pricing::units;
use crate::routes::calls::scope;
use crate::store::usage::{self, Grouping, UsageFilter, UsageRow};

/// The range when none is given.
const DEFAULT_DAYS: i64 = 30;
/// The longest range: a year, leap day included.
const MAX_DAYS: i64 = 366;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// The start (inclusive): RFC 3339 or `YYYY-MM-DD` (UTC midnight); 30
    /// days before `to` by default.
    from: Option<String>,
    /// The end (exclusive), as `from`; now by default. At most 366 days after `from`.
    to: Option<String>,
    /// `day` (the default), `agent`, `model`, `conversation`, `api_key` or
    /// `user` (with `all_users=true`).
    group_by: Option<String>,
    /// A second grouping within each group, one of the same, not `group_by`.
    split_by: Option<String>,
    /// Every user's use (admins only).
    #[serde(default)]
    #[param(default = false)]
    all_users: bool,
    /// One user's use (admins only; not with `all_users`).
    user_id: Option<String>,
}

/// Sums over the calls of a group, or of all.
#[derive(Debug, Serialize, Default, ToSchema)]
pub struct Totals {
    calls: i64,
    input_tokens: i64,
    /// The part of `input_tokens` providers served from their prompt cache.
    cached_input_tokens: i64,
    output_tokens: i64,
    /// The sum of the known costs, in `currency`; null only when every
    /// call was unpriced.
    cost: Option<f64>,
    /// Calls of a model without a price.
    unpriced_calls: i64,
}

/// One group: its key (null for calls without the attribute grouped by)
/// and its sums.
#[derive(Debug, Serialize, ToSchema)]
pub struct Item {
    key: Option<String>,
    /// Present (null for calls without it) only with `split_by`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    split: Option<Option<String>>,
    #[serde(flatten)]
    totals: Totals,
}

/// `GET /usage`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Report {
    /// The currency of every cost (`[pricing] currency`).
    currency: String,
    /// RFC 3339, UTC.
    from: String,
    /// RFC 3339, UTC; exclusive.
    to: String,
    #[schema(value_type = String)]
    group_by: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    split_by: Option<&'static str>,
    /// In key order (days ascending), null last.
    items: Vec<Item>,
    total: Totals,
}

/// The caller's LLM use and its cost over a range, summed by a grouping
/// (and within each group by a second one), exact to the nano-unit.
#[utoipa::path(
    get,
    path = "/usage",
    tag = "usage",
    params(UsageQuery),
    security(("bearer" = []), ("service_token" = [])),
    responses(
        (status = 200, description = "The report.", body = Report),
        (status = 400, description = "`bad_query` (a parameter of the wrong type), `invalid_range` (`from`/`to` unreadable, not in order, or over 366 days apart), `invalid_group_by`, `invalid_query` (`split_by` equal to `group_by`, `group_by=user` without `all_users=true`, `user_id` with `all_users=true`).", body = ErrorBody),
        (status = 403, description = "`forbidden`: `all_users=true` or `user_id` from a user who is not an admin.", body = ErrorBody)
    )
)]
pub async fn report(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<UsageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (group_name, grouping) = parse_grouping(query.group_by.as_deref())?;
    let split = match query.split_by.as_deref() {
        None => None,
        Some(text) => Some(parse_grouping(Some(text))?),
    };
    if split.is_some_and(|(_, split)| split == grouping) {
        return Err(ProxyError::InvalidQuery("split_by must differ from group_by".into()).into());
    }
    let user_id = whose(&caller, &query, grouping)?;
    if let Some((_, split)) = split {
        whose(&caller, &query, split)?;
    }
    let (from, to) = parse_range(query.from.as_deref(), query.to.as_deref(), Utc::now())?;
    let mut rows = usage::summarize(
        &state.db,
        &UsageFilter {
            user_id,
            from: from.naive_utc(),
            to: to.naive_utc(),
            grouping,
            split: split.map(|(_, split)| split),
        },
    )
    .await?;
    rows.sort_by(|a, b| nulls_last(&a.key, &b.key).then_with(|| nulls_last(&a.split, &b.split)));
    let total = total_of(&rows);
    let items = rows
        .into_iter()
        .map(|row| Item {
            totals: totals_of(&row),
            split: split.map(|_| row.split.clone()),
            key: row.key,
        })
        .collect();
    Ok(HttpResponse::Ok().json(Report {
        currency: state.pricing.currency().to_owned(),
        from: from.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        to: to.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        group_by: group_name,
        split_by: split.map(|(name, _)| name),
        items,
        total: totals_of(&total),
    }))
}

/// Keys in order, null (calls without the attribute) last.
fn nulls_last(a: &Option<String>, b: &Option<String>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

fn parse_grouping(text: Option<&str>) -> Result<(&'static str, Grouping), ProxyError> {
    Ok(match text.unwrap_or("day") {
        "day" => ("day", Grouping::Day),
        "agent" => ("agent", Grouping::Agent),
        "model" => ("model", Grouping::Model),
        "conversation" => ("conversation", Grouping::Conversation),
        "api_key" => ("api_key", Grouping::ApiKey),
        "user" => ("user", Grouping::User),
        other => return Err(ProxyError::InvalidGroupBy(clip(other))),
    })
}

/// Whose calls are summed: the caller's own; every user's for an admin
/// asking `all_users=true`; one user's for an admin naming `user_id`.
fn whose(
    caller: &Caller,
    query: &UsageQuery,
    grouping: Grouping,
) -> Result<Option<String>, ProxyError> {
    if grouping == Grouping::User && !query.all_users {
        return Err(ProxyError::InvalidQuery(
            "group_by=user is for a report over every user: add all_users=true".into(),
        ));
    }
    match &query.user_id {
        Some(_) if query.all_users => Err(ProxyError::InvalidQuery(
            "user_id and all_users=true do not go together".into(),
        )),
        Some(_) if !caller.is_admin() => Err(ProxyError::AdminsOnly("read another user's usage")),
        Some(user) => Ok(Some(user.clone())),
        None => scope(caller, query.all_users),
    }
}

/// `from`/`to` as given, or the last [`DEFAULT_DAYS`] days up to `now`.
fn parse_range(
    from: Option<&str>,
    to: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ProxyError> {
    let to = match to {
        Some(text) => parse_instant("to", text)?,
        None => now,
    };
    let from = match from {
        Some(text) => parse_instant("from", text)?,
        None => to - Duration::days(DEFAULT_DAYS),
    };
    if from >= to {
        return Err(ProxyError::InvalidRange(
            "from must be before to (to is exclusive)".into(),
        ));
    }
    if to - from > Duration::days(MAX_DAYS) {
        return Err(ProxyError::InvalidRange(format!(
            "the range is at most {MAX_DAYS} days"
        )));
    }
    Ok((from, to))
}

/// RFC 3339 (`2026-12-05T10:00:00Z`, any offset) or a UTC day
/// (`2026-12-05`, its midnight).
fn parse_instant(name: &str, text: &str) -> Result<DateTime<Utc>, ProxyError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.to_utc());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc())
        .ok_or_else(|| {
            ProxyError::InvalidRange(format!(
                "{name} must be RFC 3339 (2026-12-05T10:00:00Z) or a day (2026-12-05); got '{}'",
                clip(text)
            ))
        })
}

fn totals_of(row: &UsageRow) -> Totals {
    Totals {
        calls: row.calls,
        input_tokens: row.input_tokens,
        cached_input_tokens: row.cached_input_tokens,
        output_tokens: row.output_tokens,
        cost: row.cost_nanos.map(units),
        unpriced_calls: row.unpriced_calls,
    }
}

/// The items summed, costs in nano-units (so the total is exact); the cost
/// unknown only when every item's is.
fn total_of(rows: &[UsageRow]) -> UsageRow {
    rows.iter().fold(
        UsageRow {
            key: None,
            split: None,
            calls: 0,
            input_tokens: 0,
            cached_input_tokens: 0,
            output_tokens: 0,
            cost_nanos: None,
            unpriced_calls: 0,
        },
        |sum, row| UsageRow {
            key: None,
            split: None,
            calls: sum.calls.saturating_add(row.calls),
            input_tokens: sum.input_tokens.saturating_add(row.input_tokens),
            cached_input_tokens: sum
                .cached_input_tokens
                .saturating_add(row.cached_input_tokens),
            output_tokens: sum.output_tokens.saturating_add(row.output_tokens),
            cost_nanos: match (sum.cost_nanos, row.cost_nanos) {
                (Some(a), Some(b)) => Some(a.saturating_add(b)),
                (a, b) => a.or(b),
            },
            unpriced_calls: sum.unpriced_calls.saturating_add(row.unpriced_calls),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn a_range_defaults_to_the_last_thirty_days() {
        let now = at("2026-12-05T10:00:00Z");
        let (from, to) = parse_range(None, None, now).unwrap();
        assert_eq!((from, to), (at("2026-11-05T10:00:00Z"), now));
    }

    #[test]
    fn days_are_utc_midnights_and_offsets_are_honoured() {
        let now = at("2026-12-05T10:00:00Z");
        let (from, to) =
            parse_range(Some("2026-12-01"), Some("2026-12-02T01:00:00+01:00"), now).unwrap();
        assert_eq!(from, at("2026-12-01T00:00:00Z"));
        assert_eq!(to, at("2026-12-02T00:00:00Z"));
    }

    #[test]
    fn bad_ranges_are_refused() {
        let now = at("2026-12-05T10:00:00Z");
        for (from, to) in [
            (Some("yesterday"), None),
            (Some("2026-12-05"), Some("2026-12-05")),
            (Some("2026-12-06"), Some("2026-12-05")),
            (Some("2025-01-01"), Some("2026-12-05")),
            (None, Some("2026-13-01")),
        ] {
            assert!(parse_range(from, to, now).is_err(), "{from:?} {to:?}");
        }
    }

    #[test]
    fn a_total_cost_is_unknown_only_when_every_cost_is() {
        let row = |cost| UsageRow {
            key: None,
            split: None,
            calls: 1,
            input_tokens: 1,
            cached_input_tokens: 0,
            output_tokens: 1,
            cost_nanos: cost,
            unpriced_calls: i64::from(cost.is_none()),
        };
        assert_eq!(total_of(&[row(None), row(None)]).cost_nanos, None);
        let total = total_of(&[row(None), row(Some(5)), row(Some(7))]);
        assert_eq!(total.cost_nanos, Some(12));
        assert_eq!(total.unpriced_calls, 1);
        assert_eq!(total.calls, 3);
    }
}
