//! `GET /budget-status?user_id=&api_key_id=` (service token only): whether
//! a user (and the API key they called with) may start more LLM use; what
//! chat-service asks before a turn. `{"allowed":true}`, or the 429
//! `budget_exceeded` refusal with `error.limit`, `error.resets_at` and
//! `Retry-After`, as a direct call over budget gets.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use confab_kit::ApiError;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::require_service_token;
use crate::budget::parse_subject_id;
use crate::error::ProxyError;

#[derive(Debug, Deserialize)]
pub struct StatusQuery {
    user_id: Option<String>,
    api_key_id: Option<String>,
}

pub async fn check(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<StatusQuery>,
) -> Result<HttpResponse, ApiError> {
    require_service_token(&req, &state.service_auth)?;
    let user = query
        .user_id
        .as_deref()
        .ok_or_else(|| ProxyError::InvalidQuery("user_id is required".into()))?;
    let user = parse_subject_id(user)?;
    let key = query
        .api_key_id
        .as_deref()
        .filter(|key| !key.is_empty())
        .map(parse_subject_id)
        .transpose()?;
    state
        .budgets
        .admit(&state.db, user, key, Utc::now())
        .await
        .map_err(ProxyError::into_api)?;
    Ok(HttpResponse::Ok().json(json!({"allowed": true})))
}
