//! EdDSA signing keys of access tokens.

use chrono::NaiveDateTime;
use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::signing_keys;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub private_key: String,
    pub public_key: String,
    /// The key new tokens are signed with; inactive keys still verify.
    pub active: bool,
    pub created_at: NaiveDateTime,
}

/// Every key, newest first.
pub async fn all(db: &Db) -> Result<Vec<SigningKeyRow>, DbError> {
    db_run!(db, |conn| {
        signing_keys::table
            .order(signing_keys::created_at.desc())
            .select(SigningKeyRow::as_select())
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}

pub async fn insert(db: &Db, row: &SigningKeyRow) -> Result<(), DbError> {
    db_run!(db, |conn| {
        diesel::insert_into(signing_keys::table)
            .values(row)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(DbError::from)
    })
}
