//! `GET /api/v1/admin/signing-keys`: the keys that verify tokens now.
//! `POST /api/v1/admin/signing-keys`: rotate, i.e. sign with a new key from
//! now on. The previous key keeps verifying until every token it signed has
//! expired, so nobody is signed out by a rotation.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use serde_json::json;

use crate::GatewayState;
use crate::audit::{self, Action, Actor};
use crate::auth::authenticate_admin;
use crate::error::GatewayError;

pub async fn list(
    req: HttpRequest,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    authenticate_admin(&req, &state.keys, &state.browser).await?;
    let keys = state.keys.describe().await.map_err(ApiError::internal)?;
    let items: Vec<_> = keys
        .into_iter()
        .map(|k| {
            json!({
                "kid": k.kid,
                "active": k.active,
                "created_at": k.created_at.and_utc(),
                "retired_at": k.retired_at.map(|at| at.and_utc()),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"items": items})))
}

pub async fn rotate(
    req: HttpRequest,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    let admin = authenticate_admin(&req, &state.keys, &state.browser).await?;
    let kid = state.keys.rotate().await.map_err(|err| {
        let racing = err
            .downcast_ref::<confab_kit::db::DbError>()
            .is_some_and(|e| e.is_unique_violation());
        if racing {
            GatewayError::RotationInProgress.into()
        } else {
            ApiError::internal(err)
        }
    })?;
    tracing::info!(by = %admin.sub, kid = %kid, "signing key rotated");
    let actor = Actor::user(&admin.sub, &admin.name);
    audit::record(
        &state,
        &req,
        actor,
        Action::SigningKeyRotated,
        Some(&kid),
        json!({}),
    )
    .await?;
    Ok(HttpResponse::Created().json(json!({"kid": kid, "active": true})))
}
