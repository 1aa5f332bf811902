//! `PUT /api/v1/admin/users/{id}/budget` and
//! `PUT /api/v1/admin/api-keys/{id}/budget`, `{"period": "day" | "month",
//! "tokens": n | null, "cost": x | null}`: the user's (or the key's) limit
//! for that period, replacing the configured default; a null limit is no
//! limit of that kind. Budgets live in llm-proxy-service beside the usage
//! they limit; its answer (the budget as stored, or its refusal of the
//! values) is relayed. Each change is in the audit trail.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_protocol::budget::BudgetChange;
use confab_protocol::error::ErrorBody;
use serde_json::{Value, json};

use super::acting;
use crate::GatewayState;
use crate::audit::{self, Action, Actor};
use crate::auth::authenticate_admin;
use crate::error::GatewayError;
use crate::routes::auth::body;
use crate::services::Service;
use crate::store::{api_keys, users};

/// The refusals both budget changes answer alike (each its own 404).
#[derive(utoipa::IntoResponses)]
#[expect(
    dead_code,
    reason = "a description of answers, read by utoipa, never built"
)]
enum BudgetRefusals {
    #[response(
        status = 403,
        description = "`forbidden`: not an administrator; `api_key_not_allowed`: an API key; `csrf_rejected`: by cookie, from an origin the gateway does not trust."
    )]
    Forbidden(ErrorBody),
    #[response(
        status = 422,
        description = "`invalid_body`: not a JSON object, or values llm-proxy-service refuses (its refusal is relayed)."
    )]
    Invalid(ErrorBody),
    #[response(
        status = 502,
        description = "`upstream_unavailable`: llm-proxy-service cannot be reached."
    )]
    Unavailable(ErrorBody),
    #[response(
        status = 504,
        description = "`upstream_timeout`: llm-proxy-service did not answer in time."
    )]
    TimedOut(ErrorBody),
}

/// A user's budget for one period, in place of the configured default. Kept by
/// llm-proxy-service, whose answer is relayed.
#[utoipa::path(
    put,
    path = "/api/v1/admin/users/{id}/budget",
    operation_id = "admin_set_user_budget",
    tag = "admin",
    params(("id" = String, Path, description = "The user's id (`usr-…`).")),
    request_body(
        content = BudgetChange,
        description = "The limits for that period; null or absent is no limit of that kind, `cost` in the configured currency.",
    ),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The budget as stored: `{subject, subject_id, user_id, period, tokens, cost, currency, updated_at}`.", body = Object),
        (status = 404, description = "`not_found`: no such user.", body = ErrorBody),
        BudgetRefusals,
    )
)]
pub async fn for_user(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    id: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let user = users::by_id(&state.db, &id).await.map_err(ApiError::from)?;
    let owner = user.map(|u| u.id);
    set(&req, &state, "user", &id, owner, &body).await
}

/// An API key's budget for one period, in place of the configured default. Kept by
/// llm-proxy-service, whose answer is relayed.
#[utoipa::path(
    put,
    path = "/api/v1/admin/api-keys/{id}/budget",
    operation_id = "admin_set_api_key_budget",
    tag = "admin",
    params(("id" = String, Path, description = "The API key's id (`key-…`).")),
    request_body(
        content = BudgetChange,
        description = "The limits for that period; null or absent is no limit of that kind, `cost` in the configured currency.",
    ),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The budget as stored: `{subject, subject_id, user_id, period, tokens, cost, currency, updated_at}`.", body = Object),
        (status = 404, description = "`not_found`: no such API key.", body = ErrorBody),
        BudgetRefusals,
    )
)]
pub async fn for_api_key(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    id: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let owner = api_keys::by_id(&state.db, &id)
        .await?
        .map(|key| key.user_id);
    set(&req, &state, "api_key", &id, owner, &body).await
}

/// Stores the budget of `subject` `id` owned by `owner` (none: not found).
async fn set(
    req: &HttpRequest,
    state: &GatewayState,
    subject: &str,
    id: &str,
    owner: Option<String>,
    body: &[u8],
) -> Result<HttpResponse, ApiError> {
    let admin = authenticate_admin(req, &state.keys, &state.browser).await?;
    // An object (else 422) before the 404: the JSON's shape is read first.
    let budget: Value = body::json(body)?;
    let owner = owner.ok_or(match subject {
        "user" => GatewayError::UserNotFound,
        _ => GatewayError::ApiKeyNotFound,
    })?;
    // Read here as the document has it (a whole `tokens` however written,
    // no other field); llm-proxy-service checks the values' ranges.
    let change: BudgetChange = serde_json::from_value(budget).map_err(GatewayError::InvalidBody)?;
    let mut budget = serde_json::to_value(&change).map_err(ApiError::internal)?;
    // The owner is the gateway's to say, never the client's.
    if let Some(fields) = budget.as_object_mut() {
        fields.insert("user_id".into(), Value::String(owner));
    }
    let answer = state
        .services
        .call(
            Service::LlmProxy,
            reqwest::Method::PUT,
            &format!("/budgets/{subject}/{id}"),
            Some(&acting(&admin)),
            Some(&budget),
        )
        .await?;
    if answer.status.is_success() {
        let actor = Actor::user(&admin.sub, &admin.name);
        let mut detail = budget.clone();
        if let Some(fields) = detail.as_object_mut() {
            fields.remove("user_id");
            fields.insert("subject".into(), json!(subject));
        }
        audit::record(state, req, actor, Action::BudgetChanged, Some(id), detail).await?;
    }
    Ok(answer.relay())
}
