//! Messages of a conversation, numbered 1, 2, … by `seq`.

use chrono::Utc;
use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use confab_protocol::chat::{MessageRole, MessageStatus, MessageUsage};
use confab_protocol::ids::{ConversationId, MessageId, UserId};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::models::{MessageRow, NewMessage};
use super::schema::{conversations, messages};

/// Appends a message to a conversation `user_id` owns and returns it with its
/// `seq`. `Ok(None)` when the conversation is not theirs.
pub async fn append(
    db: &Db,
    user_id: &UserId,
    conversation_id: &ConversationId,
    message: NewMessage,
) -> Result<Option<MessageRow>, DbError> {
    let rows = append_all(db, user_id, conversation_id, vec![message]).await?;
    Ok(rows.and_then(|rows| rows.into_iter().next()))
}

/// Appends messages in one transaction, numbered in order: a turn's user
/// message and the reply begun for it are written together or not at all.
/// Bumping `message_count` first takes the write lock (SQLite) or the row
/// lock (PostgreSQL), so concurrent appends queue up and get consecutive
/// numbers. `Ok(None)` when the conversation is not `user_id`'s.
pub async fn append_all(
    db: &Db,
    user_id: &UserId,
    conversation_id: &ConversationId,
    new: Vec<NewMessage>,
) -> Result<Option<Vec<MessageRow>>, DbError> {
    let user_id = user_id.clone();
    let conversation_id = conversation_id.clone();
    let count = i64::try_from(new.len()).unwrap_or(i64::MAX);
    db_run!(db, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let now = Utc::now().naive_utc();
            let last: Option<i64> = diesel::update(
                conversations::table
                    .filter(conversations::id.eq(&conversation_id))
                    .filter(conversations::user_id.eq(&user_id)),
            )
            .set((
                conversations::message_count.eq(conversations::message_count + count),
                conversations::updated_at.eq(now),
            ))
            .returning(conversations::message_count)
            .get_result(conn)
            .await
            .optional()?;
            let Some(last) = last else {
                return Ok(None);
            };
            let rows: Vec<MessageRow> = new
                .into_iter()
                .zip(last - count + 1..)
                .map(|(message, seq)| MessageRow {
                    id: message.id,
                    conversation_id: conversation_id.clone(),
                    user_id: user_id.clone(),
                    seq,
                    role: message.role.as_str().to_owned(),
                    content: message.content,
                    content_blocks: message.content_blocks.to_string(),
                    status: message.status.as_str().to_owned(),
                    input_tokens: message.token_usage.map(|u| saturating_i64(u.input_tokens)),
                    output_tokens: message.token_usage.map(|u| saturating_i64(u.output_tokens)),
                    agent_task_id: message.agent_task_id,
                    created_at: now,
                    in_flight: message.in_flight,
                    cost_nanos: message
                        .token_usage
                        .and_then(|u| u.cost)
                        .map(|cost| cost.nanos()),
                })
                .collect();
            // One row at a time: SQLite's batch insert needs a sync connection.
            for row in &rows {
                diesel::insert_into(messages::table)
                    .values(row)
                    .execute(conn)
                    .await?;
            }
            Ok(Some(rows))
        })
        .await
    })
}

/// A page of a conversation's messages in chronological order: the `limit`
/// newest ones before `before_seq` (or the newest ones at all).
pub async fn page(
    db: &Db,
    user_id: &UserId,
    conversation_id: &ConversationId,
    before_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<MessageRow>, DbError> {
    let mut rows: Vec<MessageRow> = db_run!(db, |conn| {
        let mut query = of_conversation(user_id, conversation_id)
            .filter(messages::in_flight.eq(false))
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

/// How a reply ended, to be written over the row begun for it.
pub struct Finished {
    pub content: String,
    pub content_blocks: serde_json::Value,
    pub status: MessageStatus,
    pub token_usage: Option<MessageUsage>,
    pub agent_task_id: Option<String>,
}

/// Finishes the reply `id` begun with [`append`] (`in_flight`) in
/// `conversation_id`: its content, status and usage, and it is listed from
/// now on; in the same transaction its usage is added to the
/// conversation's totals (its cost to theirs, or, unknown, to the count of
/// replies without one), so the totals are always the sum of the finished
/// replies. `false` when the row is gone (its conversation was deleted
/// meanwhile) or finished already, and then nothing is added.
pub async fn finish(
    db: &Db,
    user_id: &UserId,
    conversation_id: &ConversationId,
    id: &MessageId,
    reply: Finished,
) -> Result<bool, DbError> {
    let user_id = user_id.clone();
    let conversation_id = conversation_id.clone();
    let id = id.clone();
    let usage = reply.token_usage;
    let input = usage.map_or(0, |u| saturating_i64(u.input_tokens));
    let output = usage.map_or(0, |u| saturating_i64(u.output_tokens));
    let cost = usage.and_then(|u| u.cost).map(|cost| cost.nanos());
    db_run!(db, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let updated = diesel::update(
                messages::table
                    .filter(messages::id.eq(&id))
                    .filter(messages::conversation_id.eq(&conversation_id))
                    .filter(messages::user_id.eq(&user_id))
                    // Once: a turn taken over by another instance while its
                    // first one still ran is saved by one of them only.
                    .filter(messages::in_flight.eq(true)),
            )
            .set((
                messages::content.eq(&reply.content),
                messages::content_blocks.eq(reply.content_blocks.to_string()),
                messages::status.eq(reply.status.as_str()),
                messages::input_tokens.eq(usage.map(|_| input)),
                messages::output_tokens.eq(usage.map(|_| output)),
                messages::cost_nanos.eq(cost),
                messages::agent_task_id.eq(&reply.agent_task_id),
                messages::in_flight.eq(false),
            ))
            .execute(conn)
            .await?;
            if updated == 0 {
                return Ok(false);
            }
            diesel::update(
                conversations::table
                    .filter(conversations::id.eq(&conversation_id))
                    .filter(conversations::user_id.eq(&user_id)),
            )
            .set((
                conversations::input_tokens.eq(conversations::input_tokens + input),
                conversations::output_tokens.eq(conversations::output_tokens + output),
                conversations::cost_nanos.eq(conversations::cost_nanos + cost.unwrap_or(0)),
                conversations::messages_without_cost
                    .eq(conversations::messages_without_cost + i64::from(cost.is_none())),
            ))
            .execute(conn)
            .await?;
            Ok(true)
        })
        .await
    })
}

/// Every reply in flight, of every user, oldest first: the turns running on
/// some instance, or cut off with one that died (see `turns::takeover`).
pub async fn in_flight_replies(db: &Db) -> Result<Vec<MessageRow>, DbError> {
    db_run!(db, |conn| {
        messages::table
            .filter(messages::in_flight.eq(true))
            .order(messages::created_at.asc())
            .select(MessageRow::as_select())
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}

/// Whether the reply `id` is still being written (a missing one is not).
pub async fn is_in_flight(db: &Db, id: &MessageId) -> Result<bool, DbError> {
    let found: Option<bool> = db_run!(db, |conn| {
        messages::table
            .filter(messages::id.eq(id))
            .select(messages::in_flight)
            .first(conn)
            .await
            .optional()
            .map_err(DbError::from)
    })?;
    Ok(found.unwrap_or(false))
}

/// Notes the agent's task of the reply `id` in flight as soon as it is
/// known, so that whoever takes the turn over can pick the task up.
pub async fn set_agent_task(
    db: &Db,
    user_id: &UserId,
    id: &MessageId,
    task_id: &str,
) -> Result<(), DbError> {
    db_run!(db, |conn| {
        diesel::update(
            messages::table
                .filter(messages::id.eq(id))
                .filter(messages::user_id.eq(user_id))
                .filter(messages::in_flight.eq(true)),
        )
        .set(messages::agent_task_id.eq(task_id))
        .execute(conn)
        .await
        .map(drop)
        .map_err(DbError::from)
    })
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The messages of a conversation `user_id` owns, in flight or not: where
/// every query of one conversation's messages starts, so none forgets the
/// owner.
#[diesel::dsl::auto_type(no_type_alias)]
fn of_conversation<'a>(user_id: &'a UserId, conversation_id: &'a ConversationId) -> _ {
    messages::table
        .filter(messages::conversation_id.eq(conversation_id))
        .filter(messages::user_id.eq(user_id))
}

/// The message `id` if `user_id` owns it.
pub async fn get(db: &Db, user_id: &UserId, id: &MessageId) -> Result<Option<MessageRow>, DbError> {
    db_run!(db, |conn| {
        messages::table
            .filter(messages::id.eq(id))
            .filter(messages::user_id.eq(user_id))
            .select(MessageRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(DbError::from)
    })
}

/// The first reply (assistant message) after `after_seq` in a conversation
/// `user_id` owns, in flight or not: the next turn a follower of the
/// conversation has to deliver.
pub async fn next_reply(
    db: &Db,
    user_id: &UserId,
    conversation_id: &ConversationId,
    after_seq: i64,
) -> Result<Option<MessageRow>, DbError> {
    db_run!(db, |conn| {
        of_conversation(user_id, conversation_id)
            .filter(messages::role.eq(MessageRole::Assistant.as_str()))
            .filter(messages::seq.gt(after_seq))
            .order(messages::seq.asc())
            .select(MessageRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(DbError::from)
    })
}

/// The newest reply of a conversation `user_id` owns, in flight or not.
pub async fn newest_reply(
    db: &Db,
    user_id: &UserId,
    conversation_id: &ConversationId,
) -> Result<Option<MessageRow>, DbError> {
    db_run!(db, |conn| {
        of_conversation(user_id, conversation_id)
            .filter(messages::role.eq(MessageRole::Assistant.as_str()))
            .order(messages::seq.desc())
            .select(MessageRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(DbError::from)
    })
}

/// The message at `seq` of a conversation `user_id` owns, in flight or not.
pub async fn at_seq(
    db: &Db,
    user_id: &UserId,
    conversation_id: &ConversationId,
    seq: i64,
) -> Result<Option<MessageRow>, DbError> {
    db_run!(db, |conn| {
        of_conversation(user_id, conversation_id)
            .filter(messages::seq.eq(seq))
            .select(MessageRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(DbError::from)
    })
}

/// How many messages a conversation of `user_id` lists (a reply in flight
/// is not counted until it is finished).
pub async fn count(
    db: &Db,
    user_id: &UserId,
    conversation_id: &ConversationId,
) -> Result<i64, DbError> {
    db_run!(db, |conn| {
        of_conversation(user_id, conversation_id)
            .filter(messages::in_flight.eq(false))
            .count()
            .get_result(conn)
            .await
            .map_err(DbError::from)
    })
}
