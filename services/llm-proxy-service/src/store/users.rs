//! Everything this service keeps about a user, deleted at once when an
//! admin deletes the user (the gateway calls `DELETE /internal/users/{id}`).

use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::schema::{budgets, llm_calls, trace_events, usage_counters};

/// Deletes the user's calls (their tool calls go with them: ON DELETE
/// CASCADE), trace events, budgets and usage counters (those they own,
/// their API keys' included), in one transaction; rows already gone are not an error.
///
/// A call of theirs still in flight is written when it ends, after this:
/// the gateway deletes the user (and so their tokens and keys) first, so
/// no new call starts, and a second delete removes what was left.
pub async fn delete_user_data(db: &Db, user_id: &str) -> Result<(), DbError> {
    db_run!(db, |conn| {
        conn.transaction::<_, DbError, _>(async |conn| {
            diesel::delete(llm_calls::table.filter(llm_calls::user_id.eq(user_id)))
                .execute(conn)
                .await?;
            diesel::delete(trace_events::table.filter(trace_events::user_id.eq(user_id)))
                .execute(conn)
                .await?;
            diesel::delete(budgets::table.filter(budgets::user_id.eq(user_id)))
                .execute(conn)
                .await?;
            diesel::delete(usage_counters::table.filter(usage_counters::user_id.eq(user_id)))
                .execute(conn)
                .await?;
            Ok(())
        })
        .await
    })
}
