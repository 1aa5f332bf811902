//! Sums over `llm_calls`: a caller's usage grouped one way or another
//! (`GET /usage`). Budgets read the usage counters instead
//! (`super::counters`).
//!
//! Sums of BIGINT columns are NUMERIC on PostgreSQL; each is cast back to
//! BIGINT in SQL, which both backends read the same way.

use chrono::NaiveDateTime;
use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::llm_calls::status;
use super::schema::llm_calls;

/// What a usage report's items are summed by: the UTC day, the agent, the
/// model (`provider/model`), the conversation, the API key or the user.
// Its names (`group_by=`, `split_by=` and the report's echo of them) are
// serde's, so the query's parser and the document's enum are one list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// The UTC day of `created_at`, `YYYY-MM-DD`.
    Day,
    Agent,
    /// `provider/model` of the model that answered (the price's key).
    Model,
    Conversation,
    ApiKey,
    User,
}

impl Grouping {
    /// The key's SQL expression. Grouping is done in SQL on both backends;
    /// only the day needs an expression of each backend's own (timestamps
    /// are TIMESTAMP on PostgreSQL, `YYYY-MM-DD HH:MM:SS…` text on SQLite).
    fn key_sql(self, db: &Db) -> &'static str {
        match self {
            Grouping::Day => match db {
                Db::Postgres(_) => "to_char(llm_calls.created_at, 'YYYY-MM-DD')",
                Db::Sqlite(_) => "substr(llm_calls.created_at, 1, 10)",
            },
            Grouping::Agent => "llm_calls.agent_id",
            Grouping::Model => {
                "CASE WHEN llm_calls.upstream_model IS NULL THEN llm_calls.provider \
                 ELSE llm_calls.provider || '/' || llm_calls.upstream_model END"
            }
            Grouping::Conversation => "llm_calls.conversation_id",
            Grouping::ApiKey => "llm_calls.api_key_id",
            Grouping::User => "llm_calls.user_id",
        }
    }
}

/// Which calls a usage report sums.
#[derive(Debug, Clone)]
pub struct UsageFilter {
    /// `None` only for an admin asking for every user.
    pub user_id: Option<String>,
    /// From, inclusive, to, exclusive (UTC).
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
    pub grouping: Grouping,
    /// A second grouping within each group (a chart's series per day).
    pub split: Option<Grouping>,
}

/// One group of a usage report.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct UsageRow {
    /// `None` for calls without the attribute grouped by.
    pub key: Option<String>,
    /// The second grouping's value, when one was asked for.
    pub split: Option<String>,
    pub calls: i64,
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    pub output_tokens: i64,
    /// Sum of the known costs; `None` when no call of the group has one.
    pub cost_nanos: Option<i64>,
    /// Calls whose model had no price.
    pub unpriced_calls: i64,
}

/// Ended calls (in-flight ones are left out) in the filter's range,
/// grouped, in no particular order.
pub async fn summarize(db: &Db, filter: &UsageFilter) -> Result<Vec<UsageRow>, DbError> {
    let key = filter.grouping.key_sql(db);
    // Without a split, a constant second key changes no group (cast: a
    // bare constant in GROUP BY is refused by PostgreSQL).
    let split = filter
        .split
        .map_or("CAST(NULL AS TEXT)", |split| split.key_sql(db));
    db_run!(db, |conn| {
        let mut query = llm_calls::table
            .group_by((sql::<Nullable<Text>>(key), sql::<Nullable<Text>>(split)))
            .select((
                sql::<Nullable<Text>>(key),
                sql::<Nullable<Text>>(split),
                sql::<BigInt>("COUNT(*)"),
                sql::<BigInt>("CAST(COALESCE(SUM(llm_calls.input_tokens), 0) AS BIGINT)"),
                sql::<BigInt>("CAST(COALESCE(SUM(llm_calls.cached_input_tokens), 0) AS BIGINT)"),
                sql::<BigInt>("CAST(COALESCE(SUM(llm_calls.output_tokens), 0) AS BIGINT)"),
                sql::<Nullable<BigInt>>("CAST(SUM(llm_calls.cost_nanos) AS BIGINT)"),
                sql::<BigInt>("COUNT(*) - COUNT(llm_calls.cost_nanos)"),
            ))
            .filter(llm_calls::created_at.ge(filter.from))
            .filter(llm_calls::created_at.lt(filter.to))
            .filter(llm_calls::status.ne(status::IN_FLIGHT))
            .into_boxed();
        if let Some(user) = &filter.user_id {
            query = query.filter(llm_calls::user_id.eq(user));
        }
        query.load::<UsageRow>(conn).await.map_err(DbError::from)
    })
}
