//! `GET /api/v1/admin/users/{id}`: the user, her API keys (not revoked),
//! her live sessions, and from llm-proxy-service her usage this month by
//! model and her budgets. When llm-proxy-service cannot be reached those two
//! are null and the rest is answered.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Datelike, Utc};
use confab_kit::ApiError;
use confab_protocol::error::ErrorBody;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{UserView, acting, existing};
use crate::GatewayState;
use crate::auth::authenticate_admin;
use crate::routes::api_keys::KeyView;
use crate::services::Service;
use crate::store::{api_keys, refresh_tokens};

/// A user as an admin looks into her.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDetail {
    pub user: UserView,
    /// Her keys that are not revoked.
    pub api_keys: Vec<KeyView>,
    /// How many live sessions she has.
    pub sessions: usize,
    /// llm-proxy-service's `GET /usage` for her this month, by model; null
    /// when it cannot be asked.
    #[schema(value_type = Option<Object>)]
    pub usage_this_month: Value,
    /// llm-proxy-service's `GET /budgets/user/{id}`; null when it cannot be
    /// asked.
    #[schema(value_type = Option<Object>)]
    pub budgets: Value,
}

/// A user with her API keys, sessions, this month's usage and budgets.
#[utoipa::path(
    get,
    path = "/api/v1/admin/users/{id}",
    operation_id = "admin_get_user",
    tag = "admin",
    params(("id" = String, Path, description = "The user's id (`usr-…`).")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The user (usage and budgets null when llm-proxy-service cannot be asked).", body = UserDetail),
        (status = 403, description = "`forbidden`: not an administrator; `api_key_not_allowed`: an API key.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user.", body = ErrorBody),
    )
)]
pub async fn get(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let admin = authenticate_admin(&req, &state.keys, &state.browser).await?;
    let user = existing(&state.db, &id).await?;
    let keys: Vec<KeyView> = api_keys::list_live(&state.db, &user.id)
        .await?
        .into_iter()
        .map(KeyView::from)
        .collect();
    let live_since = Utc::now().naive_utc() - chrono::TimeDelta::seconds(state.refresh_ttl_secs);
    let sessions = refresh_tokens::live_sessions(&state.db, &user.id, live_since)
        .await?
        .len();
    let today = Utc::now().date_naive();
    let month_start = today.with_day(1).unwrap_or(today);
    let admin = acting(&admin);
    let usage = llm_proxy_json(
        &state,
        &format!(
            "/usage?user_id={}&from={month_start}&group_by=model",
            user.id
        ),
        &admin,
    )
    .await;
    let budgets = llm_proxy_json(&state, &format!("/budgets/user/{}", user.id), &admin).await;
    Ok(HttpResponse::Ok().json(UserDetail {
        user: UserView::from(user),
        api_keys: keys,
        sessions,
        usage_this_month: usage,
        budgets,
    }))
}

/// What llm-proxy-service answers to `path`, or null (logged) when it
/// cannot say.
async fn llm_proxy_json(
    state: &GatewayState,
    path: &str,
    admin: &confab_protocol::auth::AuthContext,
) -> Value {
    let answer = state
        .services
        .call(
            Service::LlmProxy,
            reqwest::Method::GET,
            path,
            Some(admin),
            None,
        )
        .await;
    match answer.map(|a| (a.status, a.json())) {
        Ok((_, Some(value))) => value,
        Ok((status, None)) => {
            tracing::warn!(%path, %status, "llm-proxy-service refused an admin's read");
            Value::Null
        }
        Err(error) => {
            tracing::warn!(%path, %error, "llm-proxy-service could not be asked");
            Value::Null
        }
    }
}
