//! `DELETE /api/v1/api-keys/{id}`: revokes one of the caller's keys (204);
//! its next use is refused. Another user's key, or one already revoked,
//! is 404.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use confab_kit::ApiError;
use confab_protocol::error::ErrorBody;
use serde_json::json;

use crate::GatewayState;
use crate::audit::{self, Action, Actor};
use crate::auth::authenticate;
use crate::error::GatewayError;
use crate::store::api_keys;

/// Revokes one of the caller's API keys; its next use is refused.
#[utoipa::path(
    delete,
    path = "/api/v1/api-keys/{id}",
    operation_id = "revoke_api_key",
    tag = "api-keys",
    params(("id" = String, Path, description = "The key's id (`key-…`).")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "The key is revoked."),
        (status = 403, description = "`api_key_not_allowed`: an API key; `csrf_rejected`: by cookie, from an origin the gateway does not trust.", body = ErrorBody),
        (status = 404, description = "`not_found`: the caller has no live key of that id.", body = ErrorBody),
    )
)]
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
