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
use confab_protocol::chat::{ChatEvent, Message, UnifiedRequest};
use confab_protocol::error::ErrorBody;
use confab_protocol::ids::{AgentId, ConversationId};
use confab_protocol::openai::{ChatCompletion, ChatCompletionChunk};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::a2a::client::Trace;
use crate::domain::MessageText;
use crate::error::ChatError;
use crate::routes::CallerId;
use crate::routes::one_turn;
use crate::routes::openai::convert::{self, Completion};
use crate::routes::sse;
use crate::routes::turn_refusals::TurnRefusals;
use crate::store::conversations;
use crate::turns::begin::begin;

pub const FORMAT_HEADER: &str = "x-response-format";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    OpenAi,
    V03,
}

impl Format {
    /// Exactly the documented values (the header's `pattern`); only an
    /// absent header means the default, an empty or other one is refused.
    fn from_request(req: &HttpRequest) -> Result<Self, ChatError> {
        let Some(value) = req.headers().get(FORMAT_HEADER) else {
            return Ok(Self::OpenAi);
        };
        match value.as_bytes() {
            b"openai" => Ok(Self::OpenAi),
            b"v0.3" => Ok(Self::V03),
            _ => Err(ChatError::UnknownResponseFormat),
        }
    }
}

/// A finished turn as `/chat/unified` answers it, in the format asked for.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum UnifiedAnswer {
    /// `X-Response-Format: openai`: a `chat.completion`, with Confab's
    /// extra `conversation_id`, `message_id`, `status` and `usage.cost`.
    #[schema(value_type = ChatCompletion)]
    OpenAi(Value),
    /// `X-Response-Format: v0.3`.
    V03(Box<UnifiedReply>),
}

/// `X-Response-Format: v0.3`'s answer: the reply and where it belongs.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnifiedReply {
    pub conversation_id: ConversationId,
    pub agent_id: AgentId,
    pub message: Message,
}

// The frames themselves are written by `sse` and `convert::sse`: this type
// is the stream's schema in the document.
/// One event of a streamed `/chat/unified` turn, in the format asked for.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum UnifiedEvent {
    /// `openai`: a `chat.completion.chunk` (then `data: [DONE]`).
    OpenAi(ChatCompletionChunk),
    /// `v0.3`: the native event.
    V03(ChatEvent),
}

/// One turn, creating the conversation on the first message.
///
/// The agent is the conversation's; for a new one `agent_id`, else the
/// agent whose skills best match the message, else `chat.default_agent`.
#[utoipa::path(
    post,
    path = "/chat/unified",
    tag = "chat",
    operation_id = "unified_chat",
    params(
        ("X-Response-Format" = Option<String>, Header, nullable = false, pattern = r"^(openai|v0\.3)$", description = "`openai` (the default, also when the header is absent) or `v0.3`, exactly; any other value, empty included, is refused (400).")
    ),
    request_body = UnifiedRequest,
    responses(
        (status = 200, description = "Without `stream`: the finished reply, as a `chat.completion` (`openai`) or `{conversation_id, agent_id, message}` (`v0.3`). With `stream: true`, SSE: `chat.completion.chunk`s then `data: [DONE]` (`openai`), or the native events (`v0.3`).",
            content(
                (UnifiedAnswer = "application/json"),
                (UnifiedEvent = "text/event-stream")
            )),
        (status = 400, description = "`unknown_response_format`: `X-Response-Format` is neither `openai` nor `v0.3`; `malformed_json`, `bad_body`: the request cannot be read.", body = ErrorBody),
        (status = 404, description = "`not_found`: `conversation_id` is not a conversation of the caller's; `unknown_agent`: `agent_id`, or the conversation's agent, is not registered.", body = ErrorBody),
        (status = 422, description = "`empty_message`; `invalid_body`: the JSON does not have the documented shape.", body = ErrorBody),
        TurnRefusals
    ),
    security(("bearer" = []))
)]
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
            Ok(
                HttpResponse::Ok().json(UnifiedAnswer::V03(Box::new(UnifiedReply {
                    conversation_id,
                    agent_id,
                    message: reply,
                }))),
            )
        }
        (Format::OpenAi, false) => {
            let reply = one_turn::finished_reply(&state, &caller.user(), &started).await?;
            let completion = Completion::new(conversation_id, started.reply_id.clone(), agent_id);
            Ok(HttpResponse::Ok().json(UnifiedAnswer::OpenAi(completion.completion(&reply))))
        }
    }
}
