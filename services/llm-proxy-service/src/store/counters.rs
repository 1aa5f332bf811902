//! What each user and API key used per UTC day and month (`usage_counters`):
//! added to in the transaction that writes calls' ends, read by budget
//! checks. A check reads one row per period, whatever the number of calls
//! behind it; summing the period's `llm_calls` instead cost a check as many
//! row reads as the user had calls that day (infra/bench/README.md).
//!
//! A call counts once, when its end is written (a row whose status is no
//! longer `in_flight`), in the day and month of its `created_at` (its
//! end), with its tokens (input and output) and its known cost: the same
//! as a sum over the rows would give. A call marked `interrupted` by another
//! instance counts nothing, as its row holds no tokens.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDateTime};
use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::llm_calls::{LlmCall, status};
use super::schema::usage_counters;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = usage_counters)]
pub struct CounterRow {
    /// `user` or `api_key`.
    pub subject: String,
    pub subject_id: String,
    /// `day` or `month`.
    pub period: String,
    pub period_start: NaiveDateTime,
    /// The owner.
    pub user_id: String,
    pub tokens: i64,
    pub cost_nanos: i64,
}

/// A counter: subject, subject id, period, period start.
type CounterKey<'a> = (&'a str, &'a str, &'a str, NaiveDateTime);

/// The counters that `calls` add to, one row per counter (the batch's
/// calls of one user, day and month summed), in the counters' key order:
/// every writer locks rows in that one order, so two batches adding to the
/// same counters never wait on each other in a circle.
pub fn increments(calls: &[LlmCall]) -> Vec<CounterRow> {
    // Owner, tokens, cost.
    let mut sums: BTreeMap<CounterKey<'_>, (&str, i64, i64)> = BTreeMap::new();
    for call in calls.iter().filter(|c| c.status != status::IN_FLIGHT) {
        let Some(user) = call.user_id.as_deref() else {
            continue;
        };
        let tokens = call.input_tokens.saturating_add(call.output_tokens);
        let cost = call.cost_nanos.unwrap_or(0);
        let mut subjects = vec![("user", user)];
        if let Some(key) = call.api_key_id.as_deref() {
            subjects.push(("api_key", key));
        }
        for (subject, id) in subjects {
            for (period, start) in [
                ("day", day_start(call.created_at)),
                ("month", month_start(call.created_at)),
            ] {
                let sum = sums
                    .entry((subject, id, period, start))
                    .or_insert((user, 0, 0));
                sum.1 = sum.1.saturating_add(tokens);
                sum.2 = sum.2.saturating_add(cost);
            }
        }
    }
    sums.into_iter()
        .map(
            |((subject, id, period, start), (user, tokens, cost))| CounterRow {
                subject: subject.to_owned(),
                subject_id: id.to_owned(),
                period: period.to_owned(),
                period_start: start,
                user_id: user.to_owned(),
                tokens,
                cost_nanos: cost,
            },
        )
        .collect()
}

fn day_start(at: NaiveDateTime) -> NaiveDateTime {
    at.date().and_time(chrono::NaiveTime::MIN)
}

fn month_start(at: NaiveDateTime) -> NaiveDateTime {
    let date = at.date();
    date.with_day(1)
        .unwrap_or(date)
        .and_time(chrono::NaiveTime::MIN)
}

/// Adds `rows` to their counters, creating those that are missing.
macro_rules! add_to_counters {
    ($rows:expr) => {
        diesel::insert_into($crate::store::schema::usage_counters::table)
            .values($rows)
            .on_conflict((
                $crate::store::schema::usage_counters::subject,
                $crate::store::schema::usage_counters::subject_id,
                $crate::store::schema::usage_counters::period,
                $crate::store::schema::usage_counters::period_start,
            ))
            .do_update()
            .set((
                $crate::store::schema::usage_counters::tokens
                    .eq($crate::store::schema::usage_counters::tokens
                        + diesel::upsert::excluded($crate::store::schema::usage_counters::tokens)),
                $crate::store::schema::usage_counters::cost_nanos.eq(
                    $crate::store::schema::usage_counters::cost_nanos
                        + diesel::upsert::excluded(
                            $crate::store::schema::usage_counters::cost_nanos,
                        ),
                ),
            ))
    };
}
pub(super) use add_to_counters;

/// Tokens (input and output) and known cost used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Used {
    pub tokens: i64,
    pub cost_nanos: i64,
}

/// Tokens and cost counted for one subject, period and period start; only
/// if `owner` owns the counter, when given. Zero when nothing was counted.
pub async fn read(
    db: &Db,
    subject: &str,
    id: &str,
    period: &str,
    start: NaiveDateTime,
    owner: Option<&str>,
) -> Result<Used, DbError> {
    let found: Option<(i64, i64)> = db_run!(db, |conn| {
        let mut query = usage_counters::table
            .filter(usage_counters::subject.eq(subject))
            .filter(usage_counters::subject_id.eq(id))
            .filter(usage_counters::period.eq(period))
            .filter(usage_counters::period_start.eq(start))
            .into_boxed();
        if let Some(owner) = owner {
            query = query.filter(usage_counters::user_id.eq(owner));
        }
        query
            .select((usage_counters::tokens, usage_counters::cost_nanos))
            .first(conn)
            .await
            .optional()
            .map_err(DbError::from)
    })?;
    let (tokens, cost_nanos) = found.unwrap_or((0, 0));
    Ok(Used { tokens, cost_nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(
        id: &str,
        user: Option<&str>,
        key: Option<&str>,
        at: &str,
        tokens: (i64, i64),
        cost: Option<i64>,
    ) -> LlmCall {
        LlmCall {
            id: id.into(),
            user_id: user.map(Into::into),
            agent_id: None,
            conversation_id: None,
            provider: "builtin".into(),
            model: "builtin".into(),
            stream: false,
            request: "{}".into(),
            response: None,
            status: status::OK.into(),
            error: None,
            latency_ms: 1,
            first_chunk_ms: None,
            input_tokens: tokens.0,
            output_tokens: tokens.1,
            created_at: NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M:%S").unwrap(),
            upstream_model: None,
            attempts: 1,
            instance: None,
            api_key_id: key.map(Into::into),
            cached_input_tokens: 0,
            cost_nanos: cost,
        }
    }

    fn counted(
        rows: &[CounterRow],
        subject: &str,
        id: &str,
        period: &str,
        start: &str,
    ) -> (i64, i64) {
        let start = NaiveDateTime::parse_from_str(start, "%Y-%m-%d %H:%M:%S").unwrap();
        rows.iter()
            .find(|r| {
                r.subject == subject
                    && r.subject_id == id
                    && r.period == period
                    && r.period_start == start
            })
            .map_or((0, 0), |r| (r.tokens, r.cost_nanos))
    }

    #[test]
    fn ended_calls_count_for_their_user_and_key_in_their_day_and_month() {
        let mut in_flight = call(
            "c4",
            Some("usr-1"),
            None,
            "2026-12-05 10:00:00",
            (50, 50),
            Some(9),
        );
        in_flight.status = status::IN_FLIGHT.into();
        let rows = increments(&[
            call(
                "c1",
                Some("usr-1"),
                None,
                "2026-12-05 10:00:00",
                (3, 4),
                Some(100),
            ),
            call(
                "c2",
                Some("usr-1"),
                Some("key-1"),
                "2026-12-05 23:59:59",
                (1, 1),
                None,
            ),
            call(
                "c3",
                Some("usr-1"),
                None,
                "2026-12-06 00:00:00",
                (10, 0),
                Some(5),
            ),
            in_flight,
            call("c5", None, None, "2026-12-05 10:00:00", (7, 7), Some(7)),
        ]);
        assert_eq!(
            counted(&rows, "user", "usr-1", "day", "2026-12-05 00:00:00"),
            (9, 100)
        );
        assert_eq!(
            counted(&rows, "user", "usr-1", "day", "2026-12-06 00:00:00"),
            (10, 5)
        );
        assert_eq!(
            counted(&rows, "user", "usr-1", "month", "2026-12-01 00:00:00"),
            (19, 105)
        );
        assert_eq!(
            counted(&rows, "api_key", "key-1", "day", "2026-12-05 00:00:00"),
            (2, 0)
        );
        assert_eq!(
            counted(&rows, "api_key", "key-1", "month", "2026-12-01 00:00:00"),
            (2, 0)
        );
        assert!(rows.iter().all(|r| r.user_id == "usr-1"));
        // user day ×2, user month, key day, key month; nothing for the
        // call in flight or the one without a user.
        assert_eq!(rows.len(), 5);
        let mut sorted = rows.clone();
        sorted.sort_by(|a, b| {
            (&a.subject, &a.subject_id, &a.period, a.period_start).cmp(&(
                &b.subject,
                &b.subject_id,
                &b.period,
                b.period_start,
            ))
        });
        assert_eq!(rows, sorted, "a stable order, so writers lock alike");
    }
}
