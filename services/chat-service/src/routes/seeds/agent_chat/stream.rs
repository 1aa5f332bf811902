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
use confab_protocol::chat::ChatEvent;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::request::{AgentChatRequest, begin_agent_turn};
use crate::AppState;
use crate::routes::sse;

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
    match event {
        ChatEvent::MessageStart {
            conversation_id,
            user_message_id,
            message_id,
            agent_id,
        } => json!({
            "type": "message_start",
            "session_id": session_id,
            "conversation_id": conversation_id,
            "message_id": message_id,
            "user_message_id": user_message_id,
            "agent_id": agent_id,
        }),
        ChatEvent::Error { error } => json!({
            "type": "error",
            "error": error.message,
            "code": error.code,
        }),
        ChatEvent::Done {
            message_id,
            status,
            token_usage,
            ..
        } => json!({
            "type": "done",
            "message_id": message_id,
            "session_id": session_id,
            "status": status,
            "token_usage": token_usage,
        }),
        // Serialising a value made only of strings, numbers and JSON values
        // cannot fail.
        other => serde_json::to_value(other).unwrap_or_else(|_| json!({})),
    }
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
