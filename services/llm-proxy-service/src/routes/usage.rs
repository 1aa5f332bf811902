//! `GET /usage?from=&to=&group_by=&split_by=&all_users=&user_id=`: the
//! caller's LLM use and its cost, summed by day, agent, model,
//! conversation, API key or user (an admin's report over every user), and
//! with `split_by` (another of those) within each group by a second one:
//! the console's chart of days by agent or by model. Items then carry
//! `split` beside `key`.
//!
//! `from` (inclusive) and `to` (exclusive) are RFC 3339 date-times or
//! `YYYY-MM-DD` dates (UTC midnight); by default the last 30 days. Calls
//! still in flight are left out. Answer:
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
//!
//! Every request the document calls valid is answered: the parameters are
//! checked one by one (a date or date-time, a grouping of
//! [`Grouping`]'s), and their combinations are not refused. An empty range
//! (`from` not before `to`) sums nothing; any range is summed, long or
//! short; grouping by user a report of one user's calls gives that user's
//! one item; a split equal to the grouping gives each item its own key as
//! `split`; `user_id` with `all_users=true` is that one user. Only the
//! admin rule refuses (403): `all_users=true` or `user_id` from a user who
//! is not an admin.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::error::ErrorBody;
use serde::de::IntoDeserializer;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{KnownFormat, SchemaFormat};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::budget::clip;
use crate::error::ProxyError;
use crate::pricing::units;
use crate::routes::calls::scope;
use crate::store::usage::{self, Grouping, UsageFilter, UsageRow};

/// The range when none is given.
const DEFAULT_DAYS: i64 = 30;

/// Read as strings and parsed by the handler, so that a value out of its
/// schema is refused with its own code (`invalid_range`,
/// `invalid_group_by`); documented as what the parsers accept.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    #[param(schema_with = from_schema)]
    from: Option<String>,
    #[param(schema_with = to_schema)]
    to: Option<String>,
    /// What the items are summed by; `day` by default.
    #[param(value_type = Option<Grouping>)]
    group_by: Option<String>,
    /// A second grouping within each group (the items then carry `split`).
    #[param(value_type = Option<Grouping>)]
    split_by: Option<String>,
    /// Every user's use (admins only).
    #[serde(default)]
    #[param(default = false)]
    all_users: bool,
    /// One user's use (admins only); with `all_users=true`, still that
    /// one user's.
    user_id: Option<String>,
}

/// `from`'s schema: what [`parse_instant`] reads.
fn from_schema() -> Schema {
    instant_schema(
        "The start (inclusive): an RFC 3339 date-time (any offset) or a date (`YYYY-MM-DD`, its UTC midnight); 30 days before `to` by default.",
    )
}

/// `to`'s schema: what [`parse_instant`] reads.
fn to_schema() -> Schema {
    instant_schema(
        "The end (exclusive), as `from`; now by default. A `to` not after `from` makes an empty range, which sums nothing.",
    )
}

fn instant_schema(description: &str) -> Schema {
    let of_format = |format| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
    };
    AnyOfBuilder::new()
        .item(of_format(KnownFormat::DateTime))
        .item(of_format(KnownFormat::Date))
        .description(Some(description))
        .into()
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
    group_by: Grouping,
    #[serde(skip_serializing_if = "Option::is_none")]
    split_by: Option<Grouping>,
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
        (status = 400, description = "`bad_query` (`all_users` not a boolean, a parameter given twice), `invalid_range` (`from` or `to` neither a date-time nor a date), `invalid_group_by` (`group_by` or `split_by` not one of the groupings).", body = ErrorBody),
        (status = 403, description = "`forbidden`: `all_users=true` or `user_id` from a user who is not an admin.", body = ErrorBody)
    )
)]
pub async fn report(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<UsageQuery>,
) -> Result<HttpResponse, ApiError> {
    let grouping = match query.group_by.as_deref() {
        None => Grouping::Day,
        Some(text) => parse_grouping(text)?,
    };
    let split = query.split_by.as_deref().map(parse_grouping).transpose()?;
    let (from, to) = parse_range(query.from.as_deref(), query.to.as_deref(), Utc::now())?;
    let user_id = whose(&caller, &query)?;
    let mut rows = usage::summarize(
        &state.db,
        &UsageFilter {
            user_id,
            from: from.naive_utc(),
            to: to.naive_utc(),
            grouping,
            split,
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
        group_by: grouping,
        split_by: split,
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

/// A grouping by its name, as [`Grouping`] spells it (the names the
/// document's enum lists).
fn parse_grouping(text: &str) -> Result<Grouping, ProxyError> {
    let name: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
        text.into_deserializer();
    Grouping::deserialize(name).map_err(|_| ProxyError::InvalidGroupBy(clip(text)))
}

/// Whose calls are summed: the caller's own; every user's for an admin
/// asking `all_users=true`; one user's for an admin naming `user_id`
/// (with `all_users=true` or not: that user is one of every user).
fn whose(caller: &Caller, query: &UsageQuery) -> Result<Option<String>, ProxyError> {
    match &query.user_id {
        Some(_) if !caller.is_admin() => Err(ProxyError::AdminsOnly("read another user's usage")),
        Some(user) => Ok(Some(user.clone())),
        None => scope(caller, query.all_users),
    }
}

/// `from`/`to` as given, or the last [`DEFAULT_DAYS`] days up to `now`;
/// `from` not before `to` is an empty range, which sums nothing.
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
    Ok((from, to))
}

/// RFC 3339 (`2026-12-05T10:00:00Z`, any offset) or a UTC day
/// (`2026-12-05`, its midnight).
/// An instant past year 9999 (`9999-12-31T23:59:59-23:59`) is read as
/// the last of that year: timestamps are compared as text on SQLite, where
/// `+10000-…` would sort first.
fn parse_instant(name: &str, text: &str) -> Result<DateTime<Utc>, ProxyError> {
    let last = NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|day| day.and_hms_nano_opt(23, 59, 59, 999_999_999))
        .map(|at| at.and_utc())
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.to_utc().min(last));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc().min(last))
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
    fn unreadable_instants_are_refused() {
        let now = at("2026-12-05T10:00:00Z");
        for (from, to) in [
            (Some("yesterday"), None),
            (Some(""), None),
            (None, Some("2026-13-01")),
            (Some("2026-12-05T10:00:00"), None),
        ] {
            assert!(parse_range(from, to, now).is_err(), "{from:?} {to:?}");
        }
    }

    #[test]
    fn empty_and_long_ranges_are_read() {
        let now = at("2026-12-05T10:00:00Z");
        for (from, to) in [
            ("2026-12-05", "2026-12-05"),
            ("2026-12-06", "2026-12-05"),
            ("0001-01-01", "9999-12-31T23:59:59-23:59"),
            ("0000-01-01T00:00:00+23:59", "2026-12-05"),
        ] {
            assert!(
                parse_range(Some(from), Some(to), now).is_ok(),
                "{from} {to}"
            );
        }
        let (_, to) = parse_range(None, Some("9999-12-31T23:59:59-23:59"), now).unwrap();
        assert_eq!(to.to_rfc3339(), "9999-12-31T23:59:59.999999999+00:00");
    }

    #[test]
    fn groupings_are_read_by_the_names_the_document_lists() {
        let doc = serde_json::to_value(<Grouping as utoipa::PartialSchema>::schema()).unwrap();
        let names = doc["enum"].as_array().unwrap();
        assert_eq!(names.len(), 6, "{doc}");
        for name in names {
            let name = name.as_str().unwrap();
            let grouping = parse_grouping(name).unwrap();
            assert_eq!(serde_json::to_value(grouping).unwrap(), name);
            assert!(
                ProxyError::InvalidGroupBy(String::new())
                    .to_string()
                    .contains(name),
                "the refusal names {name}"
            );
        }
        assert!(parse_grouping("Day").is_err());
        assert!(parse_grouping("").is_err());
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
