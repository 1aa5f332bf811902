//! `POST /chat/agent/chat/stream` `{message, session_id?, agent_id?}`: one
//! turn as SSE in seed 003's events, `id:` the turn's sequence number:
//!
//! ```text
//! {"type":"message_start","session_id","conversation_id","message_id","user_message_id","agent_id"}
//! {"type":"text","text"}
//! {"type":"retry","attempt","max_attempts","delay_ms"}
//! {"type":"error","error":"<message>","code"}
//! {"type":"done","message_id","session_id","status","token_usage"}
//! ```
//!
//! The first event names the session, so a client that sent no
//! `session_id` learns the new one there. `reasoning`, `data` and
//! `tree_update` are the native events. Refusals come before the stream,
//! as JSON errors (as for [`super::chat`]).

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::AuthedJson;
use confab_protocol::chat::{ChatEvent, MessageStatus, MessageUsage};
use confab_protocol::error::ErrorBody;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::openapi::schema::{AnyOfBuilder, Schema};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::request::{AgentChatRequest, begin_agent_turn};
use crate::AppState;
use crate::routes::sse;
use crate::routes::turn_refusals::TurnRefusals;

/// One event of the stream as seed 003 reads it: its own `message_start`,
/// `error` and `done`, the other events native.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum AgentChatEvent<'a> {
    Seed(AgentChatOwnEvent<'a>),
    /// `text`, `reasoning`, `data`, `tree_update`, `retry`.
    Native(&'a ChatEvent),
}

/// `anyOf` the two, where a derived schema would say `oneOf`: the seed's
/// `message_start` is a native one with `session_id` added, so it is both.
impl PartialSchema for AgentChatEvent<'_> {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(Ref::from_schema_name(AgentChatOwnEvent::name()))
            .item(Ref::from_schema_name(ChatEvent::name()))
            .description(Some(
                "One event of the stream as seed 003 reads it: its own `message_start`, \
                 `error` and `done`, the other events native.",
            ))
            .into()
    }
}

impl ToSchema for AgentChatEvent<'_> {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            AgentChatOwnEvent::name().into_owned(),
            AgentChatOwnEvent::schema(),
        ));
        AgentChatOwnEvent::schemas(schemas);
        schemas.push((ChatEvent::name().into_owned(), ChatEvent::schema()));
        ChatEvent::schemas(schemas);
    }
}

/// The events of seed 003 that differ from the native ones.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentChatOwnEvent<'a> {
    /// The turn has begun; names the session (a new one's id comes here).
    MessageStart {
        session_id: &'a str,
        conversation_id: &'a str,
        message_id: &'a str,
        user_message_id: &'a str,
        agent_id: &'a str,
    },
    /// The agent failed: `error` is the message, `code` beside it.
    Error { error: &'a str, code: &'a str },
    /// The reply is saved; the last event.
    Done {
        message_id: &'a str,
        session_id: &'a str,
        status: MessageStatus,
        token_usage: Option<MessageUsage>,
    },
}

/// One turn in seed 003's form, streamed as SSE.
///
/// `id:` is the turn's sequence number. The first event names the session,
/// so a client that sent no `session_id` learns the new one there.
#[utoipa::path(
    post,
    path = "/chat/agent/chat/stream",
    tag = "seeds",
    operation_id = "agent_chat_stream",
    request_body = AgentChatRequest,
    responses(
        (status = 200, description = "The turn's events, one JSON object per `data:` line: `message_start`, `error` and `done` in the seed's form, the others native.", content_type = "text/event-stream", body = AgentChatEvent),
        (status = 404, description = "`not_found`: `session_id` is not a session of the caller's; `unknown_agent`: `agent_id`, or the session's agent, is not registered.", body = ErrorBody),
        (status = 422, description = "`empty_message`; `invalid_body`: the JSON does not have the documented shape.", body = ErrorBody),
        TurnRefusals
    ),
    security(("bearer" = []))
)]
pub async fn stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    request: AuthedJson<AgentChatRequest>,
) -> Result<HttpResponse, ApiError> {
    let turn = begin_agent_turn(&req, &state, request).await?;
    let session_id = turn.session_id;
    let frames = turn.started.log.subscribe(0).map(move |(seq, event)| {
        Bytes::from(format!(
            "id: {seq}\ndata: {}\n\n",
            to_json(&event, session_id.as_str())
        ))
    });
    Ok(sse::frames(frames))
}

/// The event as seed 003's client reads it.
pub fn to_json(event: &ChatEvent, session_id: &str) -> Value {
    let event = match event {
        ChatEvent::MessageStart {
            conversation_id,
            user_message_id,
            message_id,
            agent_id,
        } => AgentChatEvent::Seed(AgentChatOwnEvent::MessageStart {
            session_id,
            conversation_id,
            message_id,
            user_message_id,
            agent_id,
        }),
        ChatEvent::Error { error } => AgentChatEvent::Seed(AgentChatOwnEvent::Error {
            error: &error.message,
            code: &error.code,
        }),
        ChatEvent::Done {
            message_id,
            status,
            token_usage,
            ..
        } => AgentChatEvent::Seed(AgentChatOwnEvent::Done {
            message_id,
            session_id,
            status: *status,
            token_usage: *token_usage,
        }),
        other => AgentChatEvent::Native(other),
    };
    // Serialising a value made only of strings, numbers and JSON values
    // cannot fail.
    serde_json::to_value(&event).unwrap_or_else(|_| json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_protocol::chat::EventError;

    #[test]
    fn an_error_carries_its_message_as_text_and_its_code_beside_it() {
        let event = ChatEvent::Error {
            error: EventError {
                code: "agent_failed".into(),
                message: "the agent is down".into(),
            },
        };
        assert_eq!(
            to_json(&event, "conv-1"),
            json!({"type": "error", "error": "the agent is down", "code": "agent_failed"})
        );
        let retry = ChatEvent::Retry {
            attempt: 2,
            max_attempts: 3,
            delay_ms: 1000,
        };
        assert_eq!(
            to_json(&retry, "conv-1"),
            json!({"type": "retry", "attempt": 2, "max_attempts": 3, "delay_ms": 1000})
        );
    }
}
