//! EdDSA signing keys of access tokens.

use chrono::NaiveDateTime;
use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::schema::signing_keys;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub private_key: String,
    pub public_key: String,
    /// The key new tokens are signed with; exactly one is active.
    pub active: bool,
    pub created_at: NaiveDateTime,
    /// When the key stopped signing (it still verifies for a while).
    pub retired_at: Option<NaiveDateTime>,
}

/// The active key and the keys retired after `retired_after`, newest first:
/// every key a token still alive may carry.
pub async fn verifying(
    db: &Db,
    retired_after: NaiveDateTime,
) -> Result<Vec<SigningKeyRow>, DbError> {
    db_run!(db, |conn| {
        signing_keys::table
            .filter(
                signing_keys::active
                    .eq(true)
                    .or(signing_keys::retired_at.gt(retired_after)),
            )
            .order(signing_keys::created_at.desc())
            .select(SigningKeyRow::as_select())
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}

/// Stores the first key of a fresh database. `Ok(false)` when another
/// gateway stored one first (at most one key is active: a unique index).
pub async fn insert_first(db: &Db, first: &SigningKeyRow) -> Result<bool, DbError> {
    let inserted: Result<usize, DbError> = db_run!(db, |conn| {
        diesel::insert_into(signing_keys::table)
            .values(first)
            .execute(conn)
            .await
            .map_err(DbError::from)
    });
    match inserted {
        Ok(_) => Ok(true),
        Err(err) if err.is_unique_violation() => Ok(false),
        Err(err) => Err(err),
    }
}

/// Makes `new` the active key and retires the one it replaces, in one
/// transaction. A rotation racing another fails on the unique index
/// ([`DbError::is_unique_violation`]) and changes nothing.
pub async fn rotate(db: &Db, new: &SigningKeyRow) -> Result<(), DbError> {
    let new = new.clone();
    db_run!(db, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            diesel::update(signing_keys::table.filter(signing_keys::active.eq(true)))
                .set((
                    signing_keys::active.eq(false),
                    signing_keys::retired_at.eq(new.created_at),
                ))
                .execute(conn)
                .await?;
            diesel::insert_into(signing_keys::table)
                .values(&new)
                .execute(conn)
                .await?;
            Ok(())
        })
        .await
    })
}
