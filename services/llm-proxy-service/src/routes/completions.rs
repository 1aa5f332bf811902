//! `POST /v1/chat/completions`: OpenAI-compatible, streaming and not.
//!
//! A user calling directly (not an agent inside a turn) is held to their
//! budgets, and their API key's, before anything is sent to a provider or
//! recorded: over one, the answer is 429 `budget_exceeded` (`crate::budget`).

use std::time::Instant;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use confab_kit::ApiError;

use crate::AppState;
use crate::auth::identify;
use crate::call;
use crate::error::ProxyError;
use crate::request::{CallRequest, ClientRequest};

pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let identity = identify(&req, &state.service_auth, &state.agent_keys).await?;
    let request = ClientRequest::parse(body)?;
    if let (false, Some(user)) = (identity.from_agent, &identity.user_id) {
        state
            .budgets
            .admit(&state.db, user, identity.api_key_id.as_deref(), Utc::now())
            .await
            .map_err(ProxyError::into_api)?;
    }
    call::handle(
        &state,
        CallRequest {
            identity,
            request,
            started,
        },
    )
    .await
}
