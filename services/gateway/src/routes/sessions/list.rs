//! `GET /api/v1/auth/sessions`: the caller's live sessions, most recently
//! used first: `{"items":[{"id","created_at","last_used_at"}]}`. A session
//! is live while it is not revoked and its newest refresh token may still
//! be valid.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{TimeDelta, Utc};
use confab_kit::ApiError;
use serde_json::json;

use crate::GatewayState;
use crate::auth::authenticate;
use crate::store::refresh_tokens;

pub async fn list(
    req: HttpRequest,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    let user = authenticate(&req, &state.keys, &state.browser).await?;
    let live_since = Utc::now().naive_utc() - TimeDelta::seconds(state.refresh_ttl_secs);
    let sessions = refresh_tokens::live_sessions(&state.db, &user.sub, live_since).await?;
    let items: Vec<_> = sessions
        .into_iter()
        .map(|s| {
            json!({
                "id": s.id,
                "created_at": s.created_at.and_utc(),
                "last_used_at": s.last_used_at.and_utc(),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"items": items})))
}
