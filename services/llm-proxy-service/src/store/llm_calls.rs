//! One `llm_calls` row per call, success or failure.
//!
//! The row is written when the call starts (`in_flight`, naming the
//! instance running it) and completed when it ends (`ok` or `error`); a call
//! whose instance died is completed by another one as `interrupted`
//! (`crate::instances`). Listings show a call once it has ended.

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
    /// One of [`status`]'s.
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
    /// The llm-proxy-service instance that ran the call.
    pub instance: Option<String>,
    /// The user's personal API key the call was made with (from the
    /// gateway's `X-Api-Key-Id`), if any.
    pub api_key_id: Option<String>,
    /// The part of `input_tokens` the provider served from its prompt cache.
    pub cached_input_tokens: i64,
    /// Cost in 1e-9 units of the configured currency; `None` when the model
    /// that answered has no price (`crate::pricing`).
    pub cost_nanos: Option<i64>,
}

/// The values of `llm_calls.status`.
pub mod status {
    /// Started and not ended yet: the row its instance wrote at the start.
    pub const IN_FLIGHT: &str = "in_flight";
    pub const OK: &str = "ok";
    pub const ERROR: &str = "error";
    /// Its instance died before the call ended; the response holds what
    /// had streamed.
    pub const INTERRUPTED: &str = "interrupted";
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
        let mut query = llm_calls::table
            .filter(llm_calls::status.ne(status::IN_FLIGHT))
            .into_boxed();
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
        let mut query = llm_calls::table
            .filter(llm_calls::id.eq(id))
            .filter(llm_calls::status.ne(status::IN_FLIGHT))
            .into_boxed();
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

/// The instances other than `except` that have calls in flight.
pub async fn instances_in_flight(db: &Db, except: &str) -> Result<Vec<String>, DbError> {
    let instances: Vec<Option<String>> = db_run!(db, |conn| {
        llm_calls::table
            .filter(llm_calls::status.eq(status::IN_FLIGHT))
            .filter(llm_calls::instance.ne(except))
            .select(llm_calls::instance)
            .distinct()
            .load(conn)
            .await
            .map_err(DbError::from)
    })?;
    Ok(instances.into_iter().flatten().collect())
}

/// The calls `instance` has in flight.
pub async fn in_flight(db: &Db, instance: &str) -> Result<Vec<LlmCall>, DbError> {
    db_run!(db, |conn| {
        llm_calls::table
            .filter(llm_calls::status.eq(status::IN_FLIGHT))
            .filter(llm_calls::instance.eq(instance))
            .select(LlmCall::as_select())
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}

/// How a call whose instance died ended.
#[derive(Debug, Clone)]
pub struct Interruption {
    /// What had streamed, as the response of a broken stream is recorded.
    pub response: String,
    pub error: String,
    pub latency_ms: i64,
    pub first_chunk_ms: Option<i64>,
}

/// Marks the call `interrupted` if it is still in flight; whether it was
/// (another instance closing it at the same moment finds it was not).
pub async fn interrupt(db: &Db, id: &str, how: &Interruption) -> Result<bool, DbError> {
    let changed: usize = db_run!(db, |conn| {
        diesel::update(
            llm_calls::table
                .filter(llm_calls::id.eq(id))
                .filter(llm_calls::status.eq(status::IN_FLIGHT)),
        )
        .set((
            llm_calls::status.eq(status::INTERRUPTED),
            llm_calls::response.eq(&how.response),
            llm_calls::error.eq(&how.error),
            llm_calls::latency_ms.eq(how.latency_ms),
            llm_calls::first_chunk_ms.eq(how.first_chunk_ms),
        ))
        .execute(conn)
        .await
        .map_err(DbError::from)
    })?;
    Ok(changed == 1)
}
