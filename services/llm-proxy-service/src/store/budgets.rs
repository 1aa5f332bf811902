//! Budgets stored for one user or API key and one period, in place of the
//! configured defaults (`crate::budget`).

use chrono::NaiveDateTime;
use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;

use super::schema::budgets;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = budgets)]
#[diesel(treat_none_as_default_value = false)]
pub struct BudgetRow {
    /// `user` or `api_key`.
    pub subject: String,
    pub subject_id: String,
    /// The owner: the user itself, or the API key's user.
    pub user_id: String,
    /// `day` or `month`.
    pub period: String,
    /// `None`: no token limit.
    pub tokens: Option<i64>,
    /// `None`: no cost limit.
    pub cost_nanos: Option<i64>,
    pub updated_at: NaiveDateTime,
}

/// Stores a budget over the one already stored for its subject and period.
pub async fn put(db: &Db, row: &BudgetRow) -> Result<(), DbError> {
    db_run!(db, |conn| {
        diesel::insert_into(budgets::table)
            .values(row)
            .on_conflict((budgets::subject, budgets::subject_id, budgets::period))
            .do_update()
            .set((
                budgets::user_id.eq(excluded(budgets::user_id)),
                budgets::tokens.eq(excluded(budgets::tokens)),
                budgets::cost_nanos.eq(excluded(budgets::cost_nanos)),
                budgets::updated_at.eq(excluded(budgets::updated_at)),
            ))
            .execute(conn)
            .await
            .map(drop)
            .map_err(DbError::from)
    })
}

/// The budgets stored for a subject (at most one per period).
pub async fn of(db: &Db, subject: &str, subject_id: &str) -> Result<Vec<BudgetRow>, DbError> {
    db_run!(db, |conn| {
        budgets::table
            .filter(budgets::subject.eq(subject))
            .filter(budgets::subject_id.eq(subject_id))
            .select(BudgetRow::as_select())
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}

/// Deletes a subject's stored budget for `period`, or for every period;
/// how many there were.
pub async fn delete(
    db: &Db,
    subject: &str,
    subject_id: &str,
    period: Option<&str>,
) -> Result<usize, DbError> {
    db_run!(db, |conn| {
        let mut query = diesel::delete(budgets::table)
            .filter(budgets::subject.eq(subject))
            .filter(budgets::subject_id.eq(subject_id))
            .into_boxed();
        if let Some(period) = period {
            query = query.filter(budgets::period.eq(period));
        }
        query.execute(conn).await.map_err(DbError::from)
    })
}
