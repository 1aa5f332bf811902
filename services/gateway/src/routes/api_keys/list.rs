//! `GET /api/v1/api-keys`: the caller's keys that are not revoked, newest
//! first: `{"items": [{id, name, prefix, scopes, created_at, last_used_at,
//! expires_at}]}`.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use serde_json::json;

use super::KeyView;
use crate::GatewayState;
use crate::auth::authenticate;
use crate::store::api_keys;

pub async fn list(
    req: HttpRequest,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    let user = authenticate(&req, &state.keys, &state.browser).await?;
    let items: Vec<KeyView> = api_keys::list_live(&state.db, &user.sub)
        .await?
        .into_iter()
        .map(KeyView::from)
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}
