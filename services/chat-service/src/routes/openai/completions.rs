//! `POST /chat/completions`: the OpenAI chat-completions API over chat
//! turns, `model` = agent id (DESIGN §7).
//!
//! The conversation keeps the history, so only the last `user` message of
//! `messages` is the turn's text; the rest is ignored. The conversation is
//! the one named by the `X-Conversation-Id` header or
//! `metadata.conversation_id`; without one, a new conversation with the
//! agent is created, and its id is in the answer (`conversation_id`).
//!
//! Refusals: an unknown `model` is 404 (as OpenAI answers), a named
//! conversation with another agent than `model` is 422 `model_mismatch`,
//! no user message 422 `no_user_message`, a user message without text (any
//! of them, not only the last: a rule the document can state) 422
//! `empty_message`, a too long one 413, a user over their turn budget 429
//! (`crate::turns::budget`).

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::AuthedJson;
use confab_protocol::error::ErrorBody;
use confab_protocol::ids::ConversationId;
use confab_protocol::openai::{ChatCompletion, ChatCompletionChunk, ChatCompletionRequest};
use serde_json::Value;

use super::convert::{self, Completion};
use crate::AppState;
use crate::a2a::client::Trace;
use crate::domain::MessageText;
use crate::error::ChatError;
use crate::routes::CallerId;
use crate::routes::one_turn;
use crate::routes::turn_refusals::TurnRefusals;
use crate::store::conversations;
use crate::turns::begin::begin;

pub const CONVERSATION_HEADER: &str = "x-conversation-id";

/// The OpenAI chat-completions API over a chat turn (`model` = agent id).
///
/// Only the last `user` message of `messages` is the turn's text: the
/// conversation keeps the history. The conversation is the one named by
/// `X-Conversation-Id` or `metadata.conversation_id`, else a new one. Every
/// object has Confab's extra top-level `conversation_id` and `message_id`;
/// the `chat.completion` and the last chunk also `status` (how the reply
/// ended), and `usage` has `cost` when the agent reported one.
#[utoipa::path(
    post,
    path = "/chat/completions",
    tag = "openai",
    operation_id = "completions_create",
    params(
        ("X-Conversation-Id" = Option<String>, Header, nullable = false, description = "The conversation to go on with; wins over `metadata.conversation_id`.")
    ),
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "Without `stream`: the finished reply as a `chat.completion`. With `stream: true`: `chat.completion.chunk`s as SSE (`data:` lines, the role first, one per piece of text, a last one with `finish_reason` and, with `stream_options.include_usage`, `usage`), then `data: [DONE]`.",
            content(
                (ChatCompletion = "application/json"),
                (ChatCompletionChunk = "text/event-stream")
            )),
        (status = 400, description = "`invalid_header`: `X-Conversation-Id` is not text; `malformed_json`, `bad_body`: the request cannot be read.", body = ErrorBody),
        (status = 404, description = "`model_not_found`: `model` is not a registered agent; `not_found`: the named conversation is not the caller's.", body = ErrorBody),
        (status = 422, description = "`no_user_message`: `messages` has no `user` message; `empty_message`: a `user` message has no text; `model_mismatch`: the conversation is with another agent than `model`; `invalid_conversation_id`: `metadata.conversation_id` is not a string; `invalid_body`: the JSON does not have the documented shape.", body = ErrorBody),
        TurnRefusals
    ),
    security(("bearer" = []))
)]
pub async fn completions(
    req: HttpRequest,
    state: web::Data<AppState>,
    request: AuthedJson<ChatCompletionRequest>,
) -> Result<HttpResponse, ApiError> {
    let AuthedJson { caller, body } = request;
    let model = body.model.clone();
    if !state.agents.contains(&model) {
        return Err(ChatError::ModelNotFound(model).into());
    }
    let text = body.last_user_text().ok_or(ChatError::NoUserMessage)?;
    if body
        .messages
        .iter()
        .any(|m| m.role == "user" && m.text().trim().is_empty())
    {
        return Err(ChatError::EmptyMessage.into());
    }
    let text = MessageText::parse(text, state.chat.max_message_chars)?;
    // Before the conversation is made: a refused turn leaves nothing.
    let permit = state
        .turn_budget
        .admit(&caller.user(), caller.api_key_id.as_deref())
        .await?;
    let conversation_id = match named_conversation(&req, &body)? {
        Some(id) => {
            let conversation = conversations::owned(&state.db, &caller.user(), &id).await?;
            if conversation.agent_id != model {
                return Err(ChatError::ModelMismatch {
                    agent: conversation.agent_id.into_inner(),
                    model,
                }
                .into());
            }
            id
        }
        None => {
            one_turn::new_conversation(&state, &caller.user(), &text, model.as_str().into()).await?
        }
    };
    let started = begin(
        state.turn_services(),
        permit,
        &conversation_id,
        text,
        Trace::from_request(&req),
    )
    .await?;
    let completion = Completion::new(conversation_id, started.reply_id.clone(), model.into());
    if body.is_stream() {
        let include_usage = body
            .stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage);
        return Ok(convert::sse(
            completion.chunks(started.log.subscribe(0), include_usage),
        ));
    }
    let reply = one_turn::finished_reply(&state, &caller.user(), &started).await?;
    Ok(HttpResponse::Ok().json(completion.completion(&reply)))
}

/// The conversation the request names, header first.
fn named_conversation(
    req: &HttpRequest,
    body: &ChatCompletionRequest,
) -> Result<Option<ConversationId>, ChatError> {
    if let Some(header) = req.headers().get(CONVERSATION_HEADER) {
        let id = header
            .to_str()
            .map_err(|_| ChatError::HeaderNotText("X-Conversation-Id"))?;
        return Ok(Some(id.trim())
            .filter(|id| !id.is_empty())
            .map(ConversationId::from));
    }
    match body
        .extra
        .get("metadata")
        .and_then(|m| m.get("conversation_id"))
    {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) if !id.trim().is_empty() => Ok(Some(id.trim().into())),
        Some(_) => Err(ChatError::InvalidConversationId),
    }
}
