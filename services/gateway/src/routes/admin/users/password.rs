//! `POST /api/v1/admin/users/{id}/password` `{"password"}`: sets a user's
//! password (204). Her sessions are revoked and her access tokens refused
//! (as after a change of her own), and the reset is in the audit trail.
//! Not the acting admin's own (409 `own_account`): that would end her own
//! sessions; she uses `POST /api/v1/auth/password`, with her current one.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use confab_kit::ApiError;
use confab_protocol::error::ErrorBody;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::existing;
use crate::GatewayState;
use crate::audit::{self, Action, Actor};
use crate::auth::authenticate_admin;
use crate::domain::Password;
use crate::error::GatewayError;
use crate::revocations::cut_off;
use crate::routes::auth::body;
use crate::store::{refresh_tokens, users};

/// The user's new password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordReset {
    /// 8 to 1,024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
}

/// Sets a user's password; her sessions end and her tokens are refused.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/password",
    operation_id = "admin_reset_password",
    tag = "admin",
    params(("id" = String, Path, description = "The user's id (`usr-…`).")),
    request_body = PasswordReset,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "The password is set."),
        (status = 403, description = "`forbidden`: not an administrator; `api_key_not_allowed`: an API key; `csrf_rejected`: by cookie, from an origin the gateway does not trust.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user.", body = ErrorBody),
        (status = 409, description = "`own_account`: the acting admin's own password, which she changes with `POST /api/v1/auth/password` (a reset would end her own sessions).", body = ErrorBody),
        (status = 422, description = "`weak_password`: under 8 characters; `invalid_password`: over 1024; `invalid_body`: JSON not of the documented shape.", body = ErrorBody),
    )
)]
pub async fn reset(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    id: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let admin = authenticate_admin(&req, &state.keys, &state.browser).await?;
    let reset: PasswordReset = body::json(&body)?;
    let password = Password::parse(reset.password)?;
    let user = existing(&state.db, &id).await?;
    if user.id == admin.sub {
        return Err(GatewayError::OwnPassword.into());
    }
    let hash = state
        .passwords
        .hash(password.into_string())
        .await
        .map_err(ApiError::internal)?;
    let now = Utc::now().naive_utc();
    users::set_password(&state.db, &user.id, &hash, now).await?;
    refresh_tokens::revoke_all_of_user(&state.db, &user.id).await?;
    if user.disabled_at.is_none() {
        state.keys.revocations().set(&user.id, Some(cut_off(now)));
    }
    let actor = Actor::user(&admin.sub, &admin.name);
    audit::record(
        &state,
        &req,
        actor,
        Action::PasswordReset,
        Some(&user.id),
        json!({}),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
