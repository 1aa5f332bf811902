//! `GET /api/v1/auth/sessions`: the caller's live sessions, most recently
//! used first: `{"items":[{"id","created_at","last_used_at"}]}`. A session
//! is live while it is not revoked and its newest refresh token may still
//! be valid.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, TimeDelta, Utc};
use confab_kit::ApiError;
use confab_protocol::error::ErrorBody;
use serde::Serialize;
use utoipa::ToSchema;

use crate::GatewayState;
use crate::auth::authenticate;
use crate::store::refresh_tokens;

/// The caller's live sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub items: Vec<SessionView>,
}

/// A session: one login, its refresh token family.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// When its refresh token was last used (or the login, if never).
    #[schema(value_type = String, format = DateTime)]
    pub last_used_at: DateTime<Utc>,
}

/// The caller's live sessions (one per login), most recently used first.
#[utoipa::path(
    get,
    path = "/api/v1/auth/sessions",
    operation_id = "list_sessions",
    tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The sessions.", body = SessionList),
        (status = 403, description = "`api_key_not_allowed`: an API key.", body = ErrorBody),
    )
)]
pub async fn list(
    req: HttpRequest,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    let user = authenticate(&req, &state.keys, &state.browser).await?;
    let live_since = Utc::now().naive_utc() - TimeDelta::seconds(state.refresh_ttl_secs);
    let sessions = refresh_tokens::live_sessions(&state.db, &user.sub, live_since).await?;
    let items = sessions
        .into_iter()
        .map(|s| SessionView {
            id: s.id,
            created_at: s.created_at.and_utc(),
            last_used_at: s.last_used_at.and_utc(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(SessionList { items }))
}
