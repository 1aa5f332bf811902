//! Conversations, always scoped by their owner.

use chrono::Utc;
use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::ConversationRow;
use super::schema::conversations;

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
pub async fn get(db: &Db, user_id: &str, id: &str) -> Result<Option<ConversationRow>, DbError> {
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

/// A new conversation row owned by `user_id`.
pub fn new_row(user_id: &str, title: String, agent_id: String) -> ConversationRow {
    let now = Utc::now().naive_utc();
    ConversationRow {
        id: confab_kit::ids::new_id("conv"),
        user_id: user_id.to_owned(),
        title,
        agent_id,
        message_count: 0,
        tree: "{}".into(),
        tree_version: 0,
        created_at: now,
        updated_at: now,
    }
}
