//! `DELETE /api/v1/admin/users/{id}`: deletes a user and everything of
//! hers (204): her conversations and messages (chat-service), her LLM
//! calls, traces and budgets (llm-proxy-service), then her account, API
//! keys and sessions here. The services go first: if one cannot be
//! reached the answer is 502 and the account stays, so the admin can try
//! again (each step is idempotent). Her access tokens are refused from
//! then on (`crate::revocations` lists deleted users until their tokens
//! have expired).

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::revocations::DISABLED;
use confab_protocol::error::ErrorBody;
use serde_json::json;

use super::{acting, existing};
use crate::GatewayState;
use crate::audit::{self, Action, Actor};
use crate::auth::authenticate_admin;
use crate::error::GatewayError;
use crate::services::Service;
use crate::store::users;

/// Deletes a user and everything of hers, in every service.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/users/{id}",
    operation_id = "admin_delete_user",
    tag = "admin",
    params(("id" = String, Path, description = "The user's id (`usr-…`).")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "The user and her data are deleted; her tokens are refused."),
        (status = 403, description = "`forbidden`: not an administrator; `api_key_not_allowed`: an API key; `csrf_rejected`: by cookie, from an origin the gateway does not trust.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user.", body = ErrorBody),
        (status = 409, description = "`own_account`: an admin cannot delete herself.", body = ErrorBody),
        (status = 502, description = "`upstream_unavailable`: a service could not delete her data; the account stays, try again.", body = ErrorBody),
        (status = 504, description = "`upstream_timeout`: a service did not answer in time; the account stays, try again.", body = ErrorBody),
    )
)]
pub async fn delete(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let admin = authenticate_admin(&req, &state.keys, &state.browser).await?;
    let user = existing(&state.db, &id).await?;
    if user.id == admin.sub {
        return Err(GatewayError::OwnAccount.into());
    }
    let path = format!("/internal/users/{}", user.id);
    for service in [Service::Chat, Service::LlmProxy] {
        let answer = state
            .services
            .call(
                service,
                reqwest::Method::DELETE,
                &path,
                Some(&acting(&admin)),
                None,
            )
            .await?;
        if !answer.status.is_success() {
            tracing::error!(?service, status = %answer.status, user_id = %user.id, "a service did not delete a user's data");
            return Err(GatewayError::UpstreamUnavailable.into());
        }
    }
    users::delete(&state.db, &user.id).await?;
    state.keys.revocations().set(&user.id, Some(DISABLED));
    tracing::info!(user_id = %user.id, by = %admin.sub, "user deleted");
    let actor = Actor::user(&admin.sub, &admin.name);
    let detail = json!({"username": user.username});
    audit::record(
        &state,
        &req,
        actor,
        Action::UserDeleted,
        Some(&user.id),
        detail,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
