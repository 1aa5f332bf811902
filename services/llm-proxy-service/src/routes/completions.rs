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
use confab_protocol::error::ErrorBody;
use confab_protocol::openai::{ChatCompletion, ChatCompletionChunk, ChatCompletionRequest};

use crate::AppState;
use crate::auth::identify;
use crate::call;
use crate::error::ProxyError;
use crate::request::{CallRequest, ClientRequest};

/// An OpenAI-compatible chat completion, whole or streamed
/// (`"stream": true`), through the model's providers with retries and
/// fallback before the first byte; recorded and traced.
///
/// Credentials: an agent key (`Authorization: Bearer`, the call is the
/// agent's), a user's access token (the user's), or the service token with
/// `X-User-Id`, `X-Api-Key-Id`, `X-Conversation-Id` and `X-Agent-Id` (the
/// gateway for a user's API key, chat-service and agents for a turn). A
/// user calling directly, not an agent, is held to their budgets first.
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    tag = "openai",
    request_body(
        content = ChatCompletionRequest,
        description = "OpenAI's request; fields Confab does not read go to the upstream as sent. At most 4 MiB."
    ),
    security(("bearer" = []), ("service_token" = [])),
    responses(
        (
            status = 200,
            description = "The completion: one `chat.completion` (with `usage.cost` in `[pricing] currency` when the model has a price), or with `stream: true` a `text/event-stream` of `data: <chat.completion.chunk>` events ending with `data: [DONE]`; a stream that breaks after its start ends with `data: <OpenAI error body>`.",
            headers(
                ("x-confab-call-id" = String, description = "The id of the call's record (`GET /llm-calls/{id}`)."),
                ("x-confab-overhead-ms" = String, description = "The time the proxy itself added, in milliseconds.")
            ),
            content(
                (ChatCompletion = "application/json"),
                (ChatCompletionChunk = "text/event-stream")
            )
        ),
        (status = "4XX", description = "An upstream's own refusal of the request (a 4xx other than 429), passed on as it came: its status and body, usually OpenAI's error body.", body = confab_protocol::openai::ErrorBody),
        (status = 404, description = "`not_found`: no provider or alias serves `model`.", body = ErrorBody),
        (status = 422, description = "`invalid_body`: the body is not a JSON object, not a chat-completion request, or has no `messages` (absent or an empty list: `minItems` 1). A `model` no provider or alias serves, the empty string included, is the 404.", body = ErrorBody),
        (
            status = 429,
            description = "`budget_exceeded`: a user calling directly is over a budget of theirs or of their API key; `error.limit` is the budget and `error.resets_at` when its period ends.",
            headers(("retry-after" = String, description = "Seconds until the budget's period ends.")),
            body = ErrorBody
        ),
        (status = 502, description = "`upstream_unavailable`: every provider of the model failed before answering (unreachable, timed out, 429 or 5xx), after retries and fallback.", body = ErrorBody)
    )
)]
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
