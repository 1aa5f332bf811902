//! Users and their credentials.

use chrono::NaiveDateTime;
use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::users;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub created_at: NaiveDateTime,
    /// Set while the account is disabled.
    pub disabled_at: Option<NaiveDateTime>,
    /// The user's access tokens issued before this are refused.
    pub tokens_valid_after: Option<NaiveDateTime>,
}

impl UserRow {
    /// A new, enabled account.
    pub fn new(username: String, password_hash: String, role: &str) -> Self {
        Self {
            id: confab_kit::ids::new_id("usr"),
            username,
            password_hash,
            role: role.to_owned(),
            created_at: chrono::Utc::now().naive_utc(),
            disabled_at: None,
            tokens_valid_after: None,
        }
    }
}

/// Inserts a user; a taken username is [`DbError::is_unique_violation`].
pub async fn insert(db: &Db, user: &UserRow) -> Result<(), DbError> {
    db_run!(db, |conn| {
        diesel::insert_into(users::table)
            .values(user)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(DbError::from)
    })
}

pub async fn by_username(db: &Db, username: &str) -> Result<Option<UserRow>, DbError> {
    db_run!(db, |conn| {
        users::table
            .filter(users::username.eq(username))
            .select(UserRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(DbError::from)
    })
}

pub async fn by_id(db: &Db, id: &str) -> Result<Option<UserRow>, DbError> {
    db_run!(db, |conn| {
        users::table
            .filter(users::id.eq(id))
            .select(UserRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(DbError::from)
    })
}

pub async fn set_role(db: &Db, id: &str, role: &str) -> Result<(), DbError> {
    db_run!(db, |conn| {
        diesel::update(users::table.filter(users::id.eq(id)))
            .set(users::role.eq(role))
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(DbError::from)
    })
}

/// A page of users, oldest first (ids sort by time), whose username
/// contains `q` (already lower-case, like usernames), after `after_id`.
pub async fn search(
    db: &Db,
    q: Option<&str>,
    after_id: Option<&str>,
    limit: i64,
) -> Result<Vec<UserRow>, DbError> {
    db_run!(db, |conn| {
        let mut query = users::table.into_boxed();
        if let Some(q) = q {
            query = query.filter(users::username.like(like_pattern(q)).escape('\\'));
        }
        if let Some(after) = after_id {
            query = query.filter(users::id.gt(after));
        }
        query
            .order(users::id.asc())
            .limit(limit)
            .select(UserRow::as_select())
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}

/// `%q%` with `q`'s own `%`, `_` and `\` matching only themselves.
fn like_pattern(q: &str) -> String {
    let mut pattern = String::with_capacity(q.len() + 2);
    pattern.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Disables or enables an account at `now`; either way the user's tokens
/// issued before are refused (an enabled account starts afresh, so tokens
/// from before it was disabled stay dead). Whether the user exists.
pub async fn set_disabled(
    db: &Db,
    id: &str,
    disabled: bool,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    db_run!(db, |conn| {
        diesel::update(users::table.filter(users::id.eq(id)))
            .set((
                users::disabled_at.eq(disabled.then_some(now)),
                users::tokens_valid_after.eq(now),
            ))
            .execute(conn)
            .await
            .map(|n| n > 0)
            .map_err(DbError::from)
    })
}

/// A new role, and the user's older tokens (which name the old one)
/// refused; whether the user exists.
pub async fn change_role(
    db: &Db,
    id: &str,
    role: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    db_run!(db, |conn| {
        diesel::update(users::table.filter(users::id.eq(id)))
            .set((users::role.eq(role), users::tokens_valid_after.eq(now)))
            .execute(conn)
            .await
            .map(|n| n > 0)
            .map_err(DbError::from)
    })
}

/// A new password hash, and the user's older tokens refused; whether the
/// user exists.
pub async fn set_password(
    db: &Db,
    id: &str,
    password_hash: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    db_run!(db, |conn| {
        diesel::update(users::table.filter(users::id.eq(id)))
            .set((
                users::password_hash.eq(password_hash),
                users::tokens_valid_after.eq(now),
            ))
            .execute(conn)
            .await
            .map(|n| n > 0)
            .map_err(DbError::from)
    })
}

/// Deletes a user (keys and sessions go with it); whether it existed.
pub async fn delete(db: &Db, id: &str) -> Result<bool, DbError> {
    db_run!(db, |conn| {
        diesel::delete(users::table.filter(users::id.eq(id)))
            .execute(conn)
            .await
            .map(|n| n > 0)
            .map_err(DbError::from)
    })
}

/// The users whose tokens are refused early: the disabled ones, and those
/// whose cut-off is after `since` (before it, every token it refuses has
/// expired anyway). `(id, disabled_at, tokens_valid_after)`.
pub async fn revoked(
    db: &Db,
    since: NaiveDateTime,
) -> Result<Vec<(String, Option<NaiveDateTime>, Option<NaiveDateTime>)>, DbError> {
    db_run!(db, |conn| {
        users::table
            .filter(
                users::disabled_at
                    .is_not_null()
                    .or(users::tokens_valid_after.gt(since)),
            )
            .select((users::id, users::disabled_at, users::tokens_valid_after))
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}

/// How many users there are with the `admin` role and not disabled.
pub async fn count_active_admins(db: &Db) -> Result<i64, DbError> {
    db_run!(db, |conn| {
        users::table
            .filter(users::role.eq("admin"))
            .filter(users::disabled_at.is_null())
            .count()
            .get_result(conn)
            .await
            .map_err(DbError::from)
    })
}
