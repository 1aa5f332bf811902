//! Messages of a conversation, numbered 1, 2, … by `seq`.

use chrono::Utc;
use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::models::{MessageRow, NewMessage};
use super::schema::{conversations, messages};

/// Appends a message to a conversation `user_id` owns and returns it with its
/// `seq`. One transaction: bumping `message_count` first takes the write lock
/// (SQLite) or the row lock (PostgreSQL), so concurrent appends queue up and
/// get consecutive numbers. `Ok(None)` when the conversation is not theirs.
pub async fn append(
    db: &Db,
    user_id: &str,
    conversation_id: &str,
    message: NewMessage,
) -> Result<Option<MessageRow>, DbError> {
    let user_id = user_id.to_owned();
    let conversation_id = conversation_id.to_owned();
    db_run!(db, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let now = Utc::now().naive_utc();
            let seq: Option<i64> = diesel::update(
                conversations::table
                    .filter(conversations::id.eq(&conversation_id))
                    .filter(conversations::user_id.eq(&user_id)),
            )
            .set((
                conversations::message_count.eq(conversations::message_count + 1),
                conversations::updated_at.eq(now),
            ))
            .returning(conversations::message_count)
            .get_result(conn)
            .await
            .optional()?;
            let Some(seq) = seq else {
                return Ok(None);
            };
            let row = MessageRow {
                id: message.id,
                conversation_id,
                user_id,
                seq,
                role: message.role.as_str().to_owned(),
                content: message.content,
                content_blocks: message.content_blocks.to_string(),
                status: message.status.as_str().to_owned(),
                input_tokens: message.token_usage.map(|u| saturating_i64(u.input_tokens)),
                output_tokens: message.token_usage.map(|u| saturating_i64(u.output_tokens)),
                agent_task_id: message.agent_task_id,
                created_at: now,
            };
            diesel::insert_into(messages::table)
                .values(&row)
                .execute(conn)
                .await?;
            Ok(Some(row))
        })
        .await
    })
}

/// A page of a conversation's messages in chronological order: the `limit`
/// newest ones before `before_seq` (or the newest ones at all).
pub async fn page(
    db: &Db,
    user_id: &str,
    conversation_id: &str,
    before_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<MessageRow>, DbError> {
    let mut rows: Vec<MessageRow> = db_run!(db, |conn| {
        let mut query = messages::table
            .filter(messages::conversation_id.eq(conversation_id))
            .filter(messages::user_id.eq(user_id))
            .into_boxed();
        if let Some(before) = before_seq {
            query = query.filter(messages::seq.lt(before));
        }
        query
            .order(messages::seq.desc())
            .limit(limit)
            .select(MessageRow::as_select())
            .load(conn)
            .await
            .map_err(DbError::from)
    })?;
    rows.reverse();
    Ok(rows)
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
