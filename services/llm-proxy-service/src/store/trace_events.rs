//! Stored trace events, for history and for replaying `?since=`.

use chrono::NaiveDateTime;
use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use diesel::dsl::max;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::trace_events;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = trace_events)]
// Batch inserts on SQLite need NULL, not DEFAULT, for a None.
#[diesel(treat_none_as_default_value = false)]
pub struct TraceEventRow {
    pub seq: i64,
    pub kind: String,
    pub call_id: String,
    pub agent_id: Option<String>,
    pub user_id: Option<String>,
    pub conversation_id: Option<String>,
    pub data: String,
    pub created_at: NaiveDateTime,
}

/// Which events a reader sees.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub agent_id: Option<String>,
    /// `None` only for an admin asking for every user.
    pub user_id: Option<String>,
    pub conversation_id: Option<String>,
    /// Events after this `seq`…
    pub after_seq: i64,
    /// …and before this one, if set.
    pub before_seq: Option<i64>,
    pub limit: i64,
}

/// Matching events in `seq` order.
pub async fn list(db: &Db, filter: &EventFilter) -> Result<Vec<TraceEventRow>, DbError> {
    db_run!(db, |conn| {
        let mut query = trace_events::table
            .filter(trace_events::seq.gt(filter.after_seq))
            .into_boxed();
        if let Some(before) = filter.before_seq {
            query = query.filter(trace_events::seq.lt(before));
        }
        if let Some(agent) = &filter.agent_id {
            query = query.filter(trace_events::agent_id.eq(agent));
        }
        if let Some(user) = &filter.user_id {
            query = query.filter(trace_events::user_id.eq(user));
        }
        if let Some(conversation) = &filter.conversation_id {
            query = query.filter(trace_events::conversation_id.eq(conversation));
        }
        query
            .order(trace_events::seq.asc())
            .limit(filter.limit)
            .select(TraceEventRow::as_select())
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}

/// The stored events of one call in `seq` order.
pub async fn of_call(db: &Db, call_id: &str) -> Result<Vec<TraceEventRow>, DbError> {
    db_run!(db, |conn| {
        trace_events::table
            .filter(trace_events::call_id.eq(call_id))
            .order(trace_events::seq.asc())
            .select(TraceEventRow::as_select())
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}

/// The highest stored `seq`, 0 on an empty table.
pub async fn max_seq(db: &Db) -> Result<i64, DbError> {
    let max: Option<i64> = db_run!(db, |conn| {
        trace_events::table
            .select(max(trace_events::seq))
            .first(conn)
            .await
            .map_err(DbError::from)
    })?;
    Ok(max.unwrap_or(0))
}
