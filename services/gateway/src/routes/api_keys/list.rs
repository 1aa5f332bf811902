//! `GET /api/v1/api-keys`: the caller's keys that are not revoked, newest
//! first: `{"items": [{id, name, prefix, scopes, created_at, last_used_at,
//! expires_at}]}`.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_protocol::error::ErrorBody;
use serde::Serialize;
use utoipa::ToSchema;

use super::KeyView;
use crate::GatewayState;
use crate::auth::authenticate;
use crate::store::api_keys;

/// The caller's live keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub items: Vec<KeyView>,
}

/// The caller's API keys that are not revoked, newest first (never the
/// keys themselves).
#[utoipa::path(
    get,
    path = "/api/v1/api-keys",
    operation_id = "list_api_keys",
    tag = "api-keys",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The keys.", body = KeyList),
        (status = 403, description = "`api_key_not_allowed`: an API key.", body = ErrorBody),
    )
)]
pub async fn list(
    req: HttpRequest,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    let user = authenticate(&req, &state.keys, &state.browser).await?;
    let items = api_keys::list_live(&state.db, &user.sub)
        .await?
        .into_iter()
        .map(KeyView::from)
        .collect();
    Ok(HttpResponse::Ok().json(KeyList { items }))
}
