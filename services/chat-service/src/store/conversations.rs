//! Conversations, always scoped by their owner.

use chrono::Utc;
use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use confab_protocol::ids::{AgentId, ConversationId, UserId};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::ConversationRow;
use super::schema::conversations;
use crate::domain::{ConversationCursor, ConversationTitle};
use crate::error::ChatError;

pub async fn create(db: &Db, row: &ConversationRow) -> Result<(), DbError> {
    db_run!(db, |conn| {
        diesel::insert_into(conversations::table)
            .values(row)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(DbError::from)
    })
}

/// The conversation `id` if `user_id` owns it.
pub async fn get(
    db: &Db,
    user_id: &UserId,
    id: &ConversationId,
) -> Result<Option<ConversationRow>, DbError> {
    db_run!(db, |conn| {
        conversations::table
            .filter(conversations::id.eq(id))
            .filter(conversations::user_id.eq(user_id))
            .select(ConversationRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(DbError::from)
    })
}

/// The conversation `id` of `user_id`: another user's is not found, the
/// same as one that does not exist (DESIGN §4).
pub async fn owned(
    db: &Db,
    user_id: &UserId,
    id: &ConversationId,
) -> Result<ConversationRow, ChatError> {
    get(db, user_id, id)
        .await?
        .ok_or(ChatError::ConversationNotFound)
}

/// Up to `limit` of `user_id`'s conversations, most recently updated first
/// (`id` descending among equal times), only those after `after` when
/// given, only `agent_id`'s when given. Served by the index
/// `conversations_recent_first`.
pub async fn list(
    db: &Db,
    user_id: &UserId,
    agent_id: Option<&AgentId>,
    after: Option<&ConversationCursor>,
    limit: i64,
) -> Result<Vec<ConversationRow>, DbError> {
    db_run!(db, |conn| {
        let mut query = conversations::table
            .filter(conversations::user_id.eq(user_id))
            .into_boxed();
        if let Some(agent_id) = agent_id {
            query = query.filter(conversations::agent_id.eq(agent_id));
        }
        if let Some(after) = after {
            query = query.filter(
                conversations::updated_at
                    .lt(after.updated_at())
                    .or(conversations::updated_at
                        .eq(after.updated_at())
                        .and(conversations::id.lt(after.id()))),
            );
        }
        query
            .order((conversations::updated_at.desc(), conversations::id.desc()))
            .limit(limit)
            .select(ConversationRow::as_select())
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}

/// Renames the conversation `id` if `user_id` owns it, bumping `updated_at`;
/// the updated row, or `None` when it is not theirs.
pub async fn rename(
    db: &Db,
    user_id: &UserId,
    id: &ConversationId,
    title: &ConversationTitle,
) -> Result<Option<ConversationRow>, DbError> {
    let now = Utc::now().naive_utc();
    db_run!(db, |conn| {
        diesel::update(
            conversations::table
                .filter(conversations::id.eq(id))
                .filter(conversations::user_id.eq(user_id)),
        )
        .set((
            conversations::title.eq(title.as_str()),
            conversations::updated_at.eq(now),
        ))
        .returning(ConversationRow::as_returning())
        .get_result(conn)
        .await
        .optional()
        .map_err(DbError::from)
    })
}

/// Deletes the conversation `id` if `user_id` owns it; its messages go with
/// it (`ON DELETE CASCADE`). `false` when it is not theirs.
pub async fn delete(db: &Db, user_id: &UserId, id: &ConversationId) -> Result<bool, DbError> {
    let deleted = db_run!(db, |conn| {
        diesel::delete(
            conversations::table
                .filter(conversations::id.eq(id))
                .filter(conversations::user_id.eq(user_id)),
        )
        .execute(conn)
        .await
        .map_err(DbError::from)
    })?;
    Ok(deleted > 0)
}

/// The ids of every conversation of `user_id`.
pub async fn ids_of(db: &Db, user_id: &UserId) -> Result<Vec<ConversationId>, DbError> {
    db_run!(db, |conn| {
        conversations::table
            .filter(conversations::user_id.eq(user_id))
            .select(conversations::id)
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}

/// Deletes every conversation of `user_id`, their messages with them
/// (`ON DELETE CASCADE`); how many there were.
pub async fn delete_all_of(db: &Db, user_id: &UserId) -> Result<usize, DbError> {
    db_run!(db, |conn| {
        diesel::delete(conversations::table.filter(conversations::user_id.eq(user_id)))
            .execute(conn)
            .await
            .map_err(DbError::from)
    })
}

/// A new conversation row owned by `user_id`.
pub fn new_row(user_id: &UserId, title: ConversationTitle, agent_id: AgentId) -> ConversationRow {
    let now = Utc::now().naive_utc();
    ConversationRow {
        id: confab_kit::ids::new_id("conv").into(),
        user_id: user_id.clone(),
        title: title.into_inner(),
        agent_id,
        message_count: 0,
        tree: "{}".into(),
        tree_version: 0,
        created_at: now,
        updated_at: now,
        input_tokens: 0,
        output_tokens: 0,
        cost_nanos: 0,
        messages_without_cost: 0,
    }
}
