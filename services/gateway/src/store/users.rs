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
