//! Refresh tokens, stored as hashes.

use chrono::NaiveDateTime;
use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::refresh_tokens;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub id: String,
    pub user_id: String,
    pub family_id: String,
    pub token_hash: String,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

pub async fn insert(db: &Db, row: &RefreshTokenRow) -> Result<(), DbError> {
    db_run!(db, |conn| {
        diesel::insert_into(refresh_tokens::table)
            .values(row)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(DbError::from)
    })
}
