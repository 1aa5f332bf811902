//! `GET /api/v1/admin/signing-keys`: the keys that verify tokens now.
//! `POST /api/v1/admin/signing-keys`: rotate, i.e. sign with a new key from
//! now on. The previous key keeps verifying until every token it signed has
//! expired, so nobody is signed out by a rotation.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use confab_kit::ApiError;
use confab_protocol::error::ErrorBody;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::GatewayState;
use crate::audit::{self, Action, Actor};
use crate::auth::authenticate_admin;
use crate::error::GatewayError;

/// The keys that verify tokens now.
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKeyList {
    pub items: Vec<SigningKeyView>,
}

/// A signing key (never its private half).
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKeyView {
    /// Its id, the `kid` of the tokens it signs and of the JWKS.
    pub kid: String,
    /// Whether it signs new tokens (one does); the others only verify.
    pub active: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// When it stopped signing.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub retired_at: Option<DateTime<Utc>>,
}

/// The key a rotation made, active at once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKey {
    pub kid: String,
    pub active: bool,
}

/// The keys that verify access tokens now, the active one signing.
#[utoipa::path(
    get,
    path = "/api/v1/admin/signing-keys",
    operation_id = "admin_list_signing_keys",
    tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The signing keys.", body = SigningKeyList),
        (status = 403, description = "`forbidden`: not an administrator; `api_key_not_allowed`: an API key.", body = ErrorBody),
    )
)]
pub async fn list(
    req: HttpRequest,
    state: web::Data<GatewayState>,
) -> Result<HttpResponse, ApiError> {
    authenticate_admin(&req, &state.keys, &state.browser).await?;
    let keys = state.keys.describe().await.map_err(ApiError::internal)?;
    let items = keys
        .into_iter()
        .map(|k| SigningKeyView {
            kid: k.kid,
            active: k.active,
            created_at: k.created_at.and_utc(),
            retired_at: k.retired_at.map(|at| at.and_utc()),
        })
        .collect();
    Ok(HttpResponse::Ok().json(SigningKeyList { items }))
}

/// Rotates: tokens are signed with a new key from now on; the previous one
/// verifies until its tokens have expired.
#[utoipa::path(
    post,
    path = "/api/v1/admin/signing-keys",
    operation_id = "admin_rotate_signing_key",
    tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, description = "The new signing key.", body = RotatedKey),
        (status = 403, description = "`forbidden`: not an administrator; `api_key_not_allowed`: an API key; `csrf_rejected`: by cookie, from an origin the gateway does not trust.", body = ErrorBody),
        (status = 409, description = "`rotation_in_progress`: another rotation is under way; retry.", body = ErrorBody),
    )
)]
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
    Ok(HttpResponse::Created().json(RotatedKey { kid, active: true }))
}
