//! Which users' access tokens are refused before they expire, from the
//! gateway's own database (see `confab_kit::auth::revocations` for the
//! services' side): disabled accounts, and users whose password or role
//! changed since their tokens were issued.
//!
//! This gateway's copy is updated at once by the change it makes, and read
//! again from the database every `POLL_INTERVAL`, so a change made on
//! another gateway of the same database holds here too. The services read
//! the same list from `GET /internal/revocations` (service token only: it
//! names disabled accounts).

use std::sync::{Arc, Weak};

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{NaiveDateTime, TimeDelta, Utc};
use confab_kit::ApiError;
use confab_kit::auth::revocations::{DISABLED, POLL_INTERVAL};
use confab_kit::auth::{Revocations, service_token_state};
use confab_kit::db::{Db, DbError};
use confab_protocol::auth::{RevocationList, RevokedUser};
use confab_protocol::error::ErrorBody;

use crate::GatewayState;
use crate::audit::Action;
use crate::error::GatewayError;
use crate::store::{audit, users};

/// The list as the database has it now: disabled users, users deleted
/// lately (found in the audit trail) and users with a cut-off. A cut-off or
/// deletion older than a token's lifetime (and the verifiers' leeway)
/// refuses nothing and is left out.
pub async fn current(db: &Db, ttl_secs: i64) -> Result<RevocationList, DbError> {
    let since = Utc::now().naive_utc() - TimeDelta::seconds(ttl_secs + 60);
    let rows = users::revoked(db, since).await?;
    let deleted = audit::targets_since(db, Action::UserDeleted.as_str(), since).await?;
    Ok(RevocationList {
        users: deleted
            .into_iter()
            .map(|user_id| RevokedUser {
                user_id,
                valid_after: DISABLED,
            })
            .chain(
                rows.into_iter()
                    .map(|(user_id, disabled_at, valid_after)| RevokedUser {
                        user_id,
                        valid_after: match (disabled_at, valid_after) {
                            (Some(_), _) => DISABLED,
                            (None, Some(after)) => cut_off(after),
                            (None, None) => 0,
                        },
                    }),
            )
            .collect(),
    })
}

/// A cut-off as token `iat`s are compared with it: its whole second.
/// Every token issued in that second is refused, those before the change
/// and after alike; the gateway gives a user's new tokens an `iat` past
/// her cut-off (`KeyRing::issue`), so the ones issued with the change live.
pub fn cut_off(at: NaiveDateTime) -> i64 {
    at.and_utc().timestamp()
}

/// Reads the list into `revocations` every `POLL_INTERVAL` while it lives.
pub fn keep_loaded(db: Db, revocations: &Arc<Revocations>, ttl_secs: i64) {
    let weak: Weak<Revocations> = Arc::downgrade(revocations);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(POLL_INTERVAL);
        loop {
            ticks.tick().await;
            let Some(revocations) = weak.upgrade() else {
                return;
            };
            match current(&db, ttl_secs).await {
                Ok(list) => revocations.replace(list),
                Err(error) => tracing::warn!(%error, "reading the token revocations failed"),
            }
        }
    });
}

/// The users whose access tokens are refused before they expire, for the
/// services' verifiers.
#[utoipa::path(
    get,
    path = "/internal/revocations",
    operation_id = "revocations",
    tag = "internal",
    security(("service_token" = [])),
    responses(
        (status = 200, description = "The list (`Cache-Control: no-store`).", body = RevocationList),
        (status = 401, description = "`unauthorized`: no service token, or a wrong one.", body = ErrorBody),
    )
)]
pub async fn serve(
    req: HttpRequest,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    if !service_token_state(&req, &state.service_auth)? {
        return Err(GatewayError::ServiceTokenRequired.into());
    }
    let list = current(&state.db, state.keys.ttl_secs()).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(list))
}
