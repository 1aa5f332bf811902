//! One `llm_calls` row per call, success or failure.

use chrono::NaiveDateTime;
use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::llm_calls;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = llm_calls)]
// Batch inserts on SQLite need NULL, not DEFAULT, for a None.
#[diesel(treat_none_as_default_value = false)]
pub struct LlmCall {
    pub id: String,
    pub user_id: Option<String>,
    pub agent_id: Option<String>,
    pub conversation_id: Option<String>,
    /// The provider that answered (or was last tried).
    pub provider: String,
    /// The model the client asked for (an alias or `provider/model`).
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
    /// The provider's own model name that answered.
    pub upstream_model: Option<String>,
    /// Upstream attempts, retries and fallbacks included.
    pub attempts: i64,
}

/// Which calls a listing shows.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    /// `None` only for an admin asking for every user.
    pub user_id: Option<String>,
    pub agent_id: Option<String>,
    /// Ids sort by time: a page continues below this id.
    pub before_id: Option<String>,
    pub limit: i64,
}

/// Calls newest first.
pub async fn list(db: &Db, filter: &CallFilter) -> Result<Vec<LlmCall>, DbError> {
    db_run!(db, |conn| {
        let mut query = llm_calls::table.into_boxed();
        if let Some(user) = &filter.user_id {
            query = query.filter(llm_calls::user_id.eq(user));
        }
        if let Some(agent) = &filter.agent_id {
            query = query.filter(llm_calls::agent_id.eq(agent));
        }
        if let Some(before) = &filter.before_id {
            query = query.filter(llm_calls::id.lt(before));
        }
        query
            .order(llm_calls::id.desc())
            .limit(filter.limit)
            .select(LlmCall::as_select())
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}

/// The calls attributed to `user_id`, newest first.
pub async fn list_for_user(db: &Db, user_id: &str, limit: i64) -> Result<Vec<LlmCall>, DbError> {
    list(
        db,
        &CallFilter {
            user_id: Some(user_id.to_owned()),
            limit,
            ..CallFilter::default()
        },
    )
    .await
}

/// One call, if `user_id` (or anyone, for `None`) may see it.
pub async fn get(db: &Db, id: &str, user_id: Option<&str>) -> Result<Option<LlmCall>, DbError> {
    db_run!(db, |conn| {
        let mut query = llm_calls::table.filter(llm_calls::id.eq(id)).into_boxed();
        if let Some(user) = user_id {
            query = query.filter(llm_calls::user_id.eq(user));
        }
        query
            .select(LlmCall::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(DbError::from)
    })
}
