//! `POST /chat/unified` `{message, conversation_id?, agent_id?, stream?}`:
//! one turn, creating the conversation on the first message (DESIGN §7).
//!
//! The agent is the conversation's; for a new conversation `agent_id`
//! (registered, else 422), else the agent whose card skills best match the
//! message (`a2a::select`), else `chat.default_agent`.
//!
//! `X-Response-Format: openai` (the default) answers a `chat.completion`
//! (chunks as SSE with `stream`), `v0.3` answers
//! `{"conversation_id","agent_id","message"}` (the native events with
//! `stream`); any other format is 422. A user over their turn budget gets
//! 429 before anything is written (`crate::turns::budget`).

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::AuthedJson;
use confab_protocol::chat::UnifiedRequest;
use confab_protocol::ids::ConversationId;
use serde_json::json;

use crate::AppState;
use crate::a2a::client::Trace;
use crate::domain::MessageText;
use crate::error::ChatError;
use crate::routes::CallerId;
use crate::routes::one_turn;
use crate::routes::openai::convert::{self, Completion};
use crate::routes::sse;
use crate::store::conversations;
use crate::turns::begin::begin;

pub const FORMAT_HEADER: &str = "x-response-format";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    OpenAi,
    V03,
}

impl Format {
    fn from_request(req: &HttpRequest) -> Result<Self, ChatError> {
        let Some(value) = req.headers().get(FORMAT_HEADER) else {
            return Ok(Self::OpenAi);
        };
        match value
            .to_str()
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            Ok("" | "openai") => Ok(Self::OpenAi),
            Ok("v0.3") => Ok(Self::V03),
            _ => Err(ChatError::UnknownResponseFormat),
        }
    }
}

pub async fn unified(
    req: HttpRequest,
    state: web::Data<AppState>,
    request: AuthedJson<UnifiedRequest>,
) -> Result<HttpResponse, ApiError> {
    let format = Format::from_request(&req)?;
    let AuthedJson { caller, body } = request;
    let text = MessageText::parse(body.message, state.chat.max_message_chars)?;
    // Before the conversation is made: a refused turn leaves nothing.
    let permit = state
        .turn_budget
        .admit(&caller.user(), caller.api_key_id.as_deref())
        .await?;
    let named = body
        .conversation_id
        .filter(|id| !id.trim().is_empty())
        .map(ConversationId::from);
    let (conversation_id, agent_id) = match named {
        Some(id) => {
            let conversation = conversations::owned(&state.db, &caller.user(), &id).await?;
            (id, conversation.agent_id)
        }
        None => one_turn::conversation_for(&state, &caller.user(), &text, body.agent_id).await?,
    };
    let started = begin(
        state.turn_services(),
        permit,
        &conversation_id,
        text,
        Trace::from_request(&req),
    )
    .await?;
    match (format, body.stream) {
        (Format::V03, true) => Ok(sse::response(started.log.subscribe(0))),
        (Format::OpenAi, true) => {
            let completion = Completion::new(conversation_id, started.reply_id.clone(), agent_id);
            Ok(convert::sse(
                completion.chunks(started.log.subscribe(0), false),
            ))
        }
        (Format::V03, false) => {
            let reply = one_turn::finished_reply(&state, &caller.user(), &started).await?;
            Ok(HttpResponse::Ok().json(json!({
                "conversation_id": conversation_id,
                "agent_id": agent_id,
                "message": reply,
            })))
        }
        (Format::OpenAi, false) => {
            let reply = one_turn::finished_reply(&state, &caller.user(), &started).await?;
            let completion = Completion::new(conversation_id, started.reply_id.clone(), agent_id);
            Ok(HttpResponse::Ok().json(completion.completion(&reply)))
        }
    }
}
