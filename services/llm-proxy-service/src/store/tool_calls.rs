//! Tool calls the model asked for, assembled from their stream deltas.

use chrono::NaiveDateTime;
use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::tool_calls;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = tool_calls)]
// Batch inserts on SQLite need NULL, not DEFAULT, for a None.
#[diesel(treat_none_as_default_value = false)]
pub struct ToolCallRow {
    pub id: String,
    pub call_id: String,
    pub idx: i64,
    pub tool_call_id: String,
    pub name: String,
    pub arguments: String,
    pub created_at: NaiveDateTime,
}

pub async fn for_call(db: &Db, call_id: &str) -> Result<Vec<ToolCallRow>, DbError> {
    db_run!(db, |conn| {
        tool_calls::table
            .filter(tool_calls::call_id.eq(call_id))
            .order(tool_calls::idx.asc())
            .select(ToolCallRow::as_select())
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}
