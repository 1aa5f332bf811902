//! `GET /budget-status?user_id=&api_key_id=` (service token only): whether
//! a user (and the API key they called with) may start more LLM use; what
//! chat-service asks before a turn. `{"allowed":true}`, or the 429
//! `budget_exceeded` refusal with `error.limit`, `error.resets_at` and
//! `Retry-After`, as a direct call over budget gets.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use confab_kit::ApiError;
use confab_protocol::error::ErrorBody;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::require_service_token;
use crate::budget::parse_subject_id;
use crate::error::ProxyError;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// The user; required.
    user_id: Option<String>,
    /// The API key the user called with, if any (empty: none).
    api_key_id: Option<String>,
}

/// The answer when more use may start: always `{"allowed":true}` (the
/// other answer is the 429 refusal).
#[derive(Debug, Serialize, ToSchema)]
pub struct Allowed {
    /// Always true.
    pub allowed: bool,
}

/// Whether a user (and the API key they called with) may start more LLM
/// use: what chat-service asks before a turn.
#[utoipa::path(
    get,
    path = "/budget-status",
    tag = "budgets",
    params(StatusQuery),
    security(("service_token" = [])),
    responses(
        (status = 200, description = "Within every budget.", body = Allowed),
        (status = 400, description = "`invalid_query`: no `user_id`; `invalid_id`: an id that cannot be read; `bad_query`: the query cannot be read.", body = ErrorBody),
        (
            status = 429,
            description = "`budget_exceeded`: over a budget of the user's or of the API key's; `error.limit` is the budget and `error.resets_at` when its period ends.",
            headers(("retry-after" = String, description = "Seconds until the budget's period ends.")),
            body = ErrorBody
        )
    )
)]
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
    Ok(HttpResponse::Ok().json(Allowed { allowed: true }))
}
