//! One `llm_calls` row per call, success or failure.

use chrono::NaiveDateTime;
use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::llm_calls;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = llm_calls)]
pub struct LlmCall {
    pub id: String,
    pub user_id: Option<String>,
    pub agent_id: Option<String>,
    pub conversation_id: Option<String>,
    pub provider: String,
    pub model: String,
    pub stream: bool,
    /// The request as the client sent it (JSON text).
    pub request: String,
    /// The assembled response (JSON text), partial when the call failed mid-way.
    pub response: Option<String>,
    /// `ok` or `error`.
    pub status: String,
    pub error: Option<String>,
    pub latency_ms: i64,
    pub first_chunk_ms: Option<i64>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub created_at: NaiveDateTime,
}

pub async fn insert(db: &Db, call: &LlmCall) -> Result<(), DbError> {
    db_run!(db, |conn| {
        diesel::insert_into(llm_calls::table)
            .values(call)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(DbError::from)
    })
}

/// The calls attributed to `user_id`, newest first.
pub async fn list_for_user(db: &Db, user_id: &str, limit: i64) -> Result<Vec<LlmCall>, DbError> {
    db_run!(db, |conn| {
        llm_calls::table
            .filter(llm_calls::user_id.eq(user_id))
            .order(llm_calls::id.desc())
            .limit(limit)
            .select(LlmCall::as_select())
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}
