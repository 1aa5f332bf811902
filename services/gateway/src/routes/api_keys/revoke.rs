//! `DELETE /api/v1/api-keys/{id}`: revokes one of the caller's keys (204);
//! its next use is refused. Another user's key, or one already revoked,
//! is 404.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use confab_kit::ApiError;
use serde_json::json;

use crate::GatewayState;
use crate::audit::{self, Action, Actor};
use crate::auth::authenticate;
use crate::error::GatewayError;
use crate::store::api_keys;

pub async fn revoke(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = authenticate(&req, &state.keys, &state.browser).await?;
    if !api_keys::revoke(&state.db, &user.sub, &id, Utc::now().naive_utc()).await? {
        return Err(GatewayError::ApiKeyNotFound.into());
    }
    tracing::info!(user_id = %user.sub, key_id = %id, "API key revoked");
    let actor = Actor::user(&user.sub, &user.name);
    audit::record(
        &state,
        &req,
        actor,
        Action::ApiKeyRevoked,
        Some(&id),
        json!({}),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
