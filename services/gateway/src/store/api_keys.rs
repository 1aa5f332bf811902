//! Personal API keys: stored by their SHA-256, found by their prefix.

use chrono::NaiveDateTime;
use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::{api_keys, users};

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// `cfk_` and the key's first characters: what lists show, and how a
    /// presented key is looked up.
    pub prefix: String,
    /// SHA-256 of the whole key, lowercase hex.
    pub key_hash: String,
    /// Comma-separated scope names.
    pub scopes: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

/// A key that may be in use, with its owner's name and current role.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    pub key: ApiKeyRow,
    pub username: String,
    pub role: String,
}

/// Inserts a key.
pub async fn insert(db: &Db, key: &ApiKeyRow) -> Result<(), DbError> {
    db_run!(db, |conn| {
        diesel::insert_into(api_keys::table)
            .values(key)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(DbError::from)
    })
}

/// How many keys of the user are not revoked (expired ones count until
/// revoked: they are still listed).
pub async fn count_live(db: &Db, user_id: &str) -> Result<i64, DbError> {
    db_run!(db, |conn| {
        api_keys::table
            .filter(api_keys::user_id.eq(user_id))
            .filter(api_keys::revoked_at.is_null())
            .count()
            .get_result(conn)
            .await
            .map_err(DbError::from)
    })
}

/// The user's keys that are not revoked, newest first.
pub async fn list_live(db: &Db, user_id: &str) -> Result<Vec<ApiKeyRow>, DbError> {
    db_run!(db, |conn| {
        api_keys::table
            .filter(api_keys::user_id.eq(user_id))
            .filter(api_keys::revoked_at.is_null())
            .order(api_keys::id.desc())
            .select(ApiKeyRow::as_select())
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}

/// The keys that are not revoked with this prefix, and their owners (whose
/// accounts are not disabled).
pub async fn live_by_prefix(db: &Db, prefix: &str) -> Result<Vec<KeyOwner>, DbError> {
    let rows: Vec<(ApiKeyRow, String, String)> = db_run!(db, |conn| {
        api_keys::table
            .inner_join(users::table)
            .filter(api_keys::prefix.eq(prefix))
            .filter(api_keys::revoked_at.is_null())
            .filter(users::disabled_at.is_null())
            .select((ApiKeyRow::as_select(), users::username, users::role))
            .load(conn)
            .await
            .map_err(DbError::from)
    })?;
    Ok(rows
        .into_iter()
        .map(|(key, username, role)| KeyOwner {
            key,
            username,
            role,
        })
        .collect())
}

/// Revokes the user's key `id`; false when she has no such key that is
/// not revoked already.
pub async fn revoke(db: &Db, user_id: &str, id: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    let updated = db_run!(db, |conn| {
        diesel::update(
            api_keys::table
                .filter(api_keys::id.eq(id))
                .filter(api_keys::user_id.eq(user_id))
                .filter(api_keys::revoked_at.is_null()),
        )
        .set(api_keys::revoked_at.eq(now))
        .execute(conn)
        .await
        .map_err(DbError::from)
    })?;
    Ok(updated > 0)
}

/// Notes that the key was used at `now`.
pub async fn touch(db: &Db, id: &str, now: NaiveDateTime) -> Result<(), DbError> {
    db_run!(db, |conn| {
        diesel::update(api_keys::table.filter(api_keys::id.eq(id)))
            .set(api_keys::last_used_at.eq(now))
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(DbError::from)
    })
}

/// Any user's key by its id (an admin setting its budget).
pub async fn by_id(db: &Db, id: &str) -> Result<Option<ApiKeyRow>, DbError> {
    db_run!(db, |conn| {
        api_keys::table
            .filter(api_keys::id.eq(id))
            .select(ApiKeyRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(DbError::from)
    })
}
