//! `PATCH /api/v1/admin/users/{id}` `{"disabled"?: bool, "role"?: "user" |
//! "admin"}`: answers the user as changed.
//!
//! Disabling signs the user out everywhere: her sessions are revoked, her
//! API keys and access tokens are refused at once here and by every service
//! within seconds (`crate::revocations`). Enabling lets her sign in again;
//! tokens from before stay refused. A role change refuses her older tokens
//! too (they name the old role): her next refresh carries the new one.
//! Each change is in the audit trail.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use confab_kit::ApiError;
use confab_kit::auth::revocations::DISABLED;
use confab_protocol::auth::Role;
use confab_protocol::error::ErrorBody;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{UserView, existing};
use crate::GatewayState;
use crate::audit::{self, Action, Actor};
use crate::auth::authenticate_admin;
use crate::error::GatewayError;
use crate::revocations::cut_off;
use crate::routes::auth::body;
use crate::store::{refresh_tokens, users};

/// What to change: at least one of the two.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
struct UserChange {
    /// True signs her out everywhere; false lets her sign in again.
    #[serde(default, deserialize_with = "body::present")]
    #[schema(nullable = false)]
    disabled: Option<bool>,
    #[serde(default, deserialize_with = "body::present")]
    #[schema(nullable = false)]
    role: Option<Role>,
}

/// Disables or enables a user, or changes her role. Disabling signs her
/// out everywhere; a role change refuses her older tokens.
#[utoipa::path(
    patch,
    path = "/api/v1/admin/users/{id}",
    operation_id = "admin_update_user",
    tag = "admin",
    params(("id" = String, Path, description = "The user's id (`usr-…`).")),
    request_body = UserChange,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The user as changed.", body = UserView),
        (status = 403, description = "`forbidden`: not an administrator; `api_key_not_allowed`: an API key; `csrf_rejected`: by cookie, from an origin the gateway does not trust.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user.", body = ErrorBody),
        (status = 409, description = "`own_account`: an admin cannot disable or demote herself.", body = ErrorBody),
        (status = 422, description = "`invalid_body`: neither `disabled` nor `role`, or JSON not of the documented shape.", body = ErrorBody),
    )
)]
pub async fn update(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    id: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let admin = authenticate_admin(&req, &state.keys, &state.browser).await?;
    let change: UserChange = body::json(&body)?;
    if change.disabled.is_none() && change.role.is_none() {
        return Err(GatewayError::InvalidRequest("give disabled, role or both").into());
    }
    let user = existing(&state.db, &id).await?;
    let demoted = change.role == Some(Role::User) && user.role == Role::Admin.as_str();
    if user.id == admin.sub && (change.disabled == Some(true) || demoted) {
        return Err(GatewayError::OwnAccount.into());
    }
    let actor = || Actor::user(&admin.sub, &admin.name);
    let now = Utc::now().naive_utc();
    let revocations = state.keys.revocations();
    if let Some(role) = change.role.filter(|role| role.as_str() != user.role) {
        users::change_role(&state.db, &user.id, role.as_str(), now).await?;
        revocations.set(&user.id, Some(cut_off(now)));
        let detail = json!({"from": user.role, "to": role.as_str()});
        audit::record(
            &state,
            &req,
            actor(),
            Action::RoleChanged,
            Some(&user.id),
            detail,
        )
        .await?;
    }
    if let Some(disabled) = change
        .disabled
        .filter(|&disabled| disabled != user.disabled_at.is_some())
    {
        users::set_disabled(&state.db, &user.id, disabled, now).await?;
        let action = if disabled {
            let revoked = refresh_tokens::revoke_all_of_user(&state.db, &user.id).await?;
            revocations.set(&user.id, Some(DISABLED));
            tracing::info!(user_id = %user.id, by = %admin.sub, revoked, "user disabled");
            Action::UserDisabled
        } else {
            revocations.set(&user.id, Some(cut_off(now)));
            tracing::info!(user_id = %user.id, by = %admin.sub, "user enabled");
            Action::UserEnabled
        };
        audit::record(&state, &req, actor(), action, Some(&user.id), json!({})).await?;
    }
    let user = existing(&state.db, &user.id).await?;
    Ok(HttpResponse::Ok().json(UserView::from(user)))
}
