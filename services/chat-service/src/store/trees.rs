//! A conversation's tree document and its version, changed only by
//! compare-and-set: a change made against version n succeeds only while the
//! tree is still at n, and makes it n + 1.

use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use confab_protocol::ids::{ConversationId, UserId};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::conversations;

/// The tree of `user_id`'s conversation and its version.
pub async fn get(
    db: &Db,
    user_id: &UserId,
    conversation_id: &ConversationId,
) -> Result<Option<(serde_json::Value, i64)>, DbError> {
    let row: Option<(String, i64)> = db_run!(db, |conn| {
        conversations::table
            .filter(conversations::id.eq(conversation_id))
            .filter(conversations::user_id.eq(user_id))
            .select((conversations::tree, conversations::tree_version))
            .first(conn)
            .await
            .optional()
            .map_err(DbError::from)
    })?;
    Ok(row.map(|(tree, version)| {
        // Only this module writes the column, always valid JSON; an empty
        // tree stands in should that ever not hold.
        let tree = serde_json::from_str(&tree).unwrap_or_else(|_| serde_json::json!({}));
        (tree, version)
    }))
}

/// Replaces the tree if it is still at `base_version`; the new version, or
/// `None` when it moved on meanwhile (or the conversation is gone).
pub async fn replace(
    db: &Db,
    user_id: &UserId,
    conversation_id: &ConversationId,
    base_version: i64,
    tree: &serde_json::Value,
) -> Result<Option<i64>, DbError> {
    let tree = tree.to_string();
    db_run!(db, |conn| {
        diesel::update(
            conversations::table
                .filter(conversations::id.eq(conversation_id))
                .filter(conversations::user_id.eq(user_id))
                .filter(conversations::tree_version.eq(base_version)),
        )
        .set((
            conversations::tree.eq(&tree),
            conversations::tree_version.eq(base_version + 1),
        ))
        .returning(conversations::tree_version)
        .get_result(conn)
        .await
        .optional()
        .map_err(DbError::from)
    })
}
