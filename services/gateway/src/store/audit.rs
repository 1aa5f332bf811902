//! The audit trail: rows are only ever added (the tables' triggers refuse
//! an UPDATE or DELETE on both backends) and read.

use chrono::NaiveDateTime;
use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::audit_events;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
pub struct AuditRow {
    pub id: String,
    pub created_at: NaiveDateTime,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub action: String,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    /// A JSON object.
    pub detail: String,
}

pub async fn insert(db: &Db, row: &AuditRow) -> Result<(), DbError> {
    db_run!(db, |conn| {
        diesel::insert_into(audit_events::table)
            .values(row)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(DbError::from)
    })
}

/// Which rows a reader asked for.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub from: Option<NaiveDateTime>,
    /// Exclusive.
    pub to: Option<NaiveDateTime>,
    /// An actor's id or username.
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Rows past this id in the page's order (ids sort by time).
    pub after_id: Option<String>,
    /// Newest first, rather than oldest first.
    pub newest_first: bool,
}

/// A page of rows, oldest first (or newest first).
pub async fn page(db: &Db, filter: &AuditFilter, limit: i64) -> Result<Vec<AuditRow>, DbError> {
    db_run!(db, |conn| {
        let mut query = audit_events::table.into_boxed();
        if let Some(from) = filter.from {
            query = query.filter(audit_events::created_at.ge(from));
        }
        if let Some(to) = filter.to {
            query = query.filter(audit_events::created_at.lt(to));
        }
        if let Some(actor) = &filter.actor {
            query = query.filter(
                audit_events::actor_id
                    .eq(actor)
                    .or(audit_events::actor_name.eq(actor)),
            );
        }
        if let Some(action) = &filter.action {
            query = query.filter(audit_events::action.eq(action));
        }
        query = match (&filter.after_id, filter.newest_first) {
            (Some(after), false) => query.filter(audit_events::id.gt(after)),
            (Some(after), true) => query.filter(audit_events::id.lt(after)),
            (None, _) => query,
        };
        query = match filter.newest_first {
            true => query.order(audit_events::id.desc()),
            false => query.order(audit_events::id.asc()),
        };
        query
            .limit(limit)
            .select(AuditRow::as_select())
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}

/// The targets of `action` rows written after `since` (the users deleted
/// lately, whose tokens may still be alive).
pub async fn targets_since(
    db: &Db,
    action: &str,
    since: NaiveDateTime,
) -> Result<Vec<String>, DbError> {
    let targets: Vec<Option<String>> = db_run!(db, |conn| {
        audit_events::table
            .filter(audit_events::action.eq(action))
            .filter(audit_events::created_at.gt(since))
            .select(audit_events::target_id)
            .load(conn)
            .await
            .map_err(DbError::from)
    })?;
    Ok(targets.into_iter().flatten().collect())
}
