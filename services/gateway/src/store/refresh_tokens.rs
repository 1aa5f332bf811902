//! Refresh tokens, stored as SHA-256 hashes, and their families.
//!
//! A login starts a family; every refresh uses up the presented token and
//! adds its successor to the family. A token presented a second time means
//! it leaked (or was stolen and already used), so the whole family is
//! revoked: the thief's and the user's tokens alike (reuse detection).
//!
//! One exception keeps honest clients signed in: a token presented again
//! within the reuse grace of its use, while no token of its family has been
//! used since, gets another successor instead. That is a reply lost on the
//! way (a browser reloaded while the refresh's `Set-Cookie` was in flight)
//! or two tabs refreshing at once, not a thief: the thief's replay comes
//! after the rightful client has moved on to the successor, and is caught.

use chrono::{NaiveDateTime, TimeDelta, Utc};
use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::schema::{refresh_families, refresh_tokens};

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub id: String,
    pub user_id: String,
    pub family_id: String,
    pub token_hash: String,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

/// What presenting a refresh token came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Rotation {
    /// The token was good; `next` was stored in its place.
    Rotated {
        user_id: String,
    },
    /// The token had been used before: its family is now revoked.
    Reused,
    /// The token's family was revoked (logout, or an earlier reuse).
    Revoked,
    Expired,
    Unknown,
}

/// Starts a family with its first token (a login).
pub async fn start_family(db: &Db, first: &RefreshTokenRow) -> Result<(), DbError> {
    let first = first.clone();
    db_run!(db, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            diesel::insert_into(refresh_families::table)
                .values((
                    refresh_families::id.eq(&first.family_id),
                    refresh_families::user_id.eq(&first.user_id),
                    refresh_families::created_at.eq(first.created_at),
                    refresh_families::last_used_at.eq(first.created_at),
                ))
                .execute(conn)
                .await?;
            diesel::insert_into(refresh_tokens::table)
                .values(&first)
                .execute(conn)
                .await?;
            Ok(())
        })
        .await
    })
}

/// Uses up the token whose hash is `presented` and stores `next` (whose
/// family and user are filled in here) in one transaction. The family row
/// is updated while its token is claimed: a revocation racing this rotation
/// waits for it and then revokes the new token's family too, or wins and
/// this rotation finds the family revoked.
///
/// A used token is given `next` anyway when it was used no more than
/// `reuse_grace` ago and no token of its family has been used since (see
/// the module's note); otherwise its family is revoked.
pub async fn rotate(
    db: &Db,
    presented: &str,
    mut next: RefreshTokenRow,
    reuse_grace: TimeDelta,
) -> Result<Rotation, DbError> {
    let presented = presented.to_owned();
    db_run!(db, |conn| {
        conn.transaction::<_, DbError, _>(async move |conn| {
            let now = Utc::now().naive_utc();
            let claimed: Option<RefreshTokenRow> = diesel::update(
                refresh_tokens::table
                    .filter(refresh_tokens::token_hash.eq(&presented))
                    .filter(refresh_tokens::used_at.is_null())
                    .filter(refresh_tokens::expires_at.gt(now)),
            )
            .set(refresh_tokens::used_at.eq(now))
            .returning(RefreshTokenRow::as_returning())
            .get_result(conn)
            .await
            .optional()?;
            let claimed = match claimed {
                Some(claimed) => claimed,
                None => {
                    let known: Option<RefreshTokenRow> = refresh_tokens::table
                        .filter(refresh_tokens::token_hash.eq(&presented))
                        .select(RefreshTokenRow::as_select())
                        .first(conn)
                        .await
                        .optional()?;
                    let Some(token) = known else {
                        return Ok(Rotation::Unknown);
                    };
                    // Unused yet not claimed: past its expiry.
                    let Some(used_at) = token.used_at else {
                        return Ok(Rotation::Expired);
                    };
                    // A zero grace is none, even for a use at this very
                    // instant (two transactions may read the same clock).
                    let within_grace = reuse_grace > TimeDelta::zero()
                        && now - used_at <= reuse_grace
                        && token.expires_at > now;
                    // Nothing of the family used since: its successor never
                    // reached the client. Asked only within the grace.
                    let lost_reply = within_grace
                        && refresh_tokens::table
                            .filter(refresh_tokens::family_id.eq(&token.family_id))
                            .filter(refresh_tokens::used_at.gt(used_at))
                            .count()
                            .get_result::<i64>(conn)
                            .await?
                            == 0;
                    if !lost_reply {
                        diesel::update(
                            refresh_families::table
                                .filter(refresh_families::id.eq(&token.family_id))
                                .filter(refresh_families::revoked_at.is_null()),
                        )
                        .set(refresh_families::revoked_at.eq(now))
                        .execute(conn)
                        .await?;
                        return Ok(Rotation::Reused);
                    }
                    // Within the grace: a lost reply or a concurrent
                    // refresh. The family lives on with one more token.
                    token
                }
            };
            let live = diesel::update(
                refresh_families::table
                    .filter(refresh_families::id.eq(&claimed.family_id))
                    .filter(refresh_families::revoked_at.is_null()),
            )
            .set(refresh_families::last_used_at.eq(now))
            .execute(conn)
            .await?;
            if live == 0 {
                return Ok(Rotation::Revoked);
            }
            next.user_id = claimed.user_id.clone();
            next.family_id = claimed.family_id;
            diesel::insert_into(refresh_tokens::table)
                .values(&next)
                .execute(conn)
                .await?;
            Ok(Rotation::Rotated {
                user_id: claimed.user_id,
            })
        })
        .await
    })
}

/// Revokes the family of the token whose hash is `presented` (a logout).
/// True when a live family was revoked.
pub async fn revoke_family_of(db: &Db, presented: &str) -> Result<bool, DbError> {
    db_run!(db, |conn| {
        let family: Option<String> = refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(presented))
            .select(refresh_tokens::family_id)
            .first(conn)
            .await
            .optional()?;
        let Some(family) = family else {
            return Ok(false);
        };
        diesel::update(
            refresh_families::table
                .filter(refresh_families::id.eq(&family))
                .filter(refresh_families::revoked_at.is_null()),
        )
        .set(refresh_families::revoked_at.eq(Utc::now().naive_utc()))
        .execute(conn)
        .await
        .map(|n| n > 0)
        .map_err(DbError::from)
    })
}

/// Revokes every family of a user (logout everywhere); how many were live.
pub async fn revoke_all_of_user(db: &Db, user_id: &str) -> Result<usize, DbError> {
    db_run!(db, |conn| {
        diesel::update(
            refresh_families::table
                .filter(refresh_families::user_id.eq(user_id))
                .filter(refresh_families::revoked_at.is_null()),
        )
        .set(refresh_families::revoked_at.eq(Utc::now().naive_utc()))
        .execute(conn)
        .await
        .map_err(DbError::from)
    })
}

/// One login's session as its owner sees it.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = refresh_families)]
pub struct SessionRow {
    pub id: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
}

/// The user's sessions that are not revoked and whose newest refresh token
/// may still be valid (used after `live_since`), newest first.
pub async fn live_sessions(
    db: &Db,
    user_id: &str,
    live_since: NaiveDateTime,
) -> Result<Vec<SessionRow>, DbError> {
    db_run!(db, |conn| {
        refresh_families::table
            .filter(refresh_families::user_id.eq(user_id))
            .filter(refresh_families::revoked_at.is_null())
            .filter(refresh_families::last_used_at.gt(live_since))
            .order(refresh_families::last_used_at.desc())
            .select(SessionRow::as_select())
            .load(conn)
            .await
            .map_err(DbError::from)
    })
}

/// Revokes one of the user's sessions; false when it is not hers or was
/// already revoked.
pub async fn revoke_session(db: &Db, user_id: &str, family_id: &str) -> Result<bool, DbError> {
    db_run!(db, |conn| {
        diesel::update(
            refresh_families::table
                .filter(refresh_families::id.eq(family_id))
                .filter(refresh_families::user_id.eq(user_id))
                .filter(refresh_families::revoked_at.is_null()),
        )
        .set(refresh_families::revoked_at.eq(Utc::now().naive_utc()))
        .execute(conn)
        .await
        .map(|n| n > 0)
        .map_err(DbError::from)
    })
}
