//! `POST /v1/chat/completions`: OpenAI-compatible, streaming and not.

use std::time::Instant;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;

use crate::AppState;
use crate::auth::identify;
use crate::call;
use crate::request::{CallRequest, ClientRequest};

pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let identity = identify(&req, &state.service_auth, &state.agent_keys).await?;
    let request = ClientRequest::parse(body)?;
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
