//! `POST /v1/chat/completions`: OpenAI-compatible, streaming and not.

use std::time::Instant;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_protocol::openai::ChatCompletionRequest;
use serde_json::Value;

use crate::AppState;
use crate::auth::identify;
use crate::call::{self, CallRequest};

pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let identity = identify(&req, &state.service_auth, &state.agent_keys).await?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("malformed_json", format!("malformed JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "the body must be a JSON object",
        ));
    };
    let request: ChatCompletionRequest = serde_json::from_value(Value::Object(object.clone()))
        .map_err(|e| ApiError::unprocessable("invalid_body", format!("invalid request: {e}")))?;
    if request.messages.is_empty() {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "messages must not be empty",
        ));
    }
    call::handle(
        &state,
        CallRequest {
            identity,
            body: object,
            request,
            raw: body,
            started,
        },
    )
    .await
}
