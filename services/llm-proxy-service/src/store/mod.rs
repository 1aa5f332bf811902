//! Storage of llm-proxy-service. Handlers never build SQL; this module never
//! sees HTTP types. Writes arrive in batches from the recorder.

pub mod budgets;
pub mod counters;
pub mod llm_calls;
pub mod schema;
pub mod tool_calls;
pub mod trace_events;
pub mod usage;
pub mod users;

use std::sync::Arc;

use confab_kit::db::{Conn, Db, DbError, Migrations};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, RunQueryDsl};
use diesel_migrations::embed_migrations;

use self::llm_calls::LlmCall;
use self::tool_calls::ToolCallRow;
use self::trace_events::TraceEventRow;

pub static MIGRATIONS: Migrations = Migrations {
    postgres: embed_migrations!("migrations/postgres"),
    sqlite: embed_migrations!("migrations/sqlite"),
};

/// Rows gathered by the recorder, written in one transaction.
#[derive(Debug, Default)]
pub struct Batch {
    /// Each call once (its start, or what it ended as): written over the
    /// row already there, as a call's end completes the row of its start.
    pub calls: Vec<LlmCall>,
    pub tool_calls: Vec<ToolCallRow>,
    pub trace_events: Vec<TraceEventRow>,
}

impl Batch {
    /// Rows in the batch, over all tables.
    pub fn rows(&self) -> usize {
        self.calls.len() + self.tool_calls.len() + self.trace_events.len()
    }
}

/// PostgreSQL's limit of bind parameters per statement, and so the rows one
/// multi-row INSERT may carry (the widest table has 22 columns).
const PG_ROWS_PER_INSERT: usize = 65_535 / 22;

/// What a call's later row replaces in its earlier one: everything but the
/// id.
macro_rules! replace_call {
    () => {{
        use schema::llm_calls::dsl::*;
        (
            (
                user_id.eq(excluded(user_id)),
                agent_id.eq(excluded(agent_id)),
                conversation_id.eq(excluded(conversation_id)),
                provider.eq(excluded(provider)),
                model.eq(excluded(model)),
                stream.eq(excluded(stream)),
                request.eq(excluded(request)),
                response.eq(excluded(response)),
                status.eq(excluded(status)),
            ),
            (
                error.eq(excluded(error)),
                latency_ms.eq(excluded(latency_ms)),
                first_chunk_ms.eq(excluded(first_chunk_ms)),
                input_tokens.eq(excluded(input_tokens)),
                output_tokens.eq(excluded(output_tokens)),
                created_at.eq(excluded(created_at)),
                upstream_model.eq(excluded(upstream_model)),
                attempts.eq(excluded(attempts)),
                instance.eq(excluded(instance)),
            ),
            (
                api_key_id.eq(excluded(api_key_id)),
                cached_input_tokens.eq(excluded(cached_input_tokens)),
                cost_nanos.eq(excluded(cost_nanos)),
            ),
        )
    }};
}

/// Writes a batch all or nothing; calls first, as tool calls refer to them,
/// and with the calls that ended, their users' and keys' usage counters.
/// A trace event whose `seq` is already stored is left as it is (a stream
/// that numbered from scratch must not stop the writer for good).
///
/// The one place where the backends take different paths, for speed:
/// PostgreSQL gets multi-row INSERTs; SQLite (whose multi-row insert diesel
/// provides for the sync connection only) runs the whole transaction in one
/// blocking task instead of one per statement.
pub async fn write_batch(db: &Db, batch: Arc<Batch>) -> Result<(), DbError> {
    match db.get().await? {
        Conn::Postgres(mut conn) => {
            conn.transaction::<_, DbError, _>(async |conn| {
                for rows in batch.calls.chunks(PG_ROWS_PER_INSERT) {
                    diesel::insert_into(schema::llm_calls::table)
                        .values(rows)
                        .on_conflict(schema::llm_calls::id)
                        .do_update()
                        .set(replace_call!())
                        .execute(conn)
                        .await?;
                }
                let counted = counters::increments(&batch.calls);
                for rows in counted.chunks(PG_ROWS_PER_INSERT) {
                    counters::add_to_counters!(rows).execute(conn).await?;
                }
                for rows in batch.tool_calls.chunks(PG_ROWS_PER_INSERT) {
                    diesel::insert_into(schema::tool_calls::table)
                        .values(rows)
                        .execute(conn)
                        .await?;
                }
                for rows in batch.trace_events.chunks(PG_ROWS_PER_INSERT) {
                    diesel::insert_into(schema::trace_events::table)
                        .values(rows)
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                Ok(())
            })
            .await
        }
        Conn::Sqlite(mut conn) => conn
            .spawn_blocking(move |conn| {
                conn.immediate_transaction(|conn| write_sqlite(conn, &batch))
            })
            .await
            .map_err(DbError::from),
    }
}

fn write_sqlite(conn: &mut diesel::SqliteConnection, batch: &Batch) -> diesel::QueryResult<()> {
    use diesel::RunQueryDsl as SyncRunQueryDsl;
    SyncRunQueryDsl::execute(
        diesel::insert_into(schema::llm_calls::table)
            .values(&batch.calls)
            .on_conflict(schema::llm_calls::id)
            .do_update()
            .set(replace_call!()),
        conn,
    )?;
    // One statement per counter: SQLite's upsert takes one row at a time.
    for row in counters::increments(&batch.calls) {
        SyncRunQueryDsl::execute(counters::add_to_counters!(&row), conn)?;
    }
    SyncRunQueryDsl::execute(
        diesel::insert_into(schema::tool_calls::table).values(&batch.tool_calls),
        conn,
    )?;
    SyncRunQueryDsl::execute(
        diesel::insert_into(schema::trace_events::table)
            .values(&batch.trace_events)
            .on_conflict_do_nothing(),
        conn,
    )?;
    Ok(())
}
