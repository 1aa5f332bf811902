//! `GET /chat/conversations/{id}/stream`: re-attaches to the conversation's
//! turn.
//!
//! While the turn runs, the events after `Last-Event-ID` (the header an
//! `EventSource` sends when it reconnects, or `?last_event_id=`), then the
//! live ones: no gap, no duplicate. Once it has ended, the finished reply as
//! `message_start`, `text`, its `data` parts and `done`. 404 for a
//! conversation that is not the caller's, or one without a reply yet.
//!
//! The id is the number of an event of the turn, 1 to 19 digits (the
//! document's pattern; every such number fits a `u64`); anything else is 422
//! `bad_last_event_id`. Every well-formed number is served: while the turn
//! runs, the events after it (a number past the last event waits for the
//! next); once it has ended, the whole reply as above, whatever the number.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::chat::{ChatEvent, MessageRole, MessageStatus};
use confab_protocol::error::ErrorBody;
use confab_protocol::ids::{AgentId, ConversationId};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::error::ChatError;
use crate::routes::CallerId;
use crate::routes::sse;
use crate::store::models::MessageRow;
use crate::store::{conversations, messages};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResumeQuery {
    /// The last event read, when the `Last-Event-ID` header cannot be sent.
    #[param(value_type = Option<String>, pattern = r"^[0-9]{1,19}$")]
    last_event_id: Option<String>,
}

/// Re-attaches to the conversation's turn, as SSE.
///
/// While the turn runs: the events after `Last-Event-ID`, then the live
/// ones. Once it has ended: the finished reply as `message_start`, `text`,
/// its `data` parts and `done`.
#[utoipa::path(
    get,
    path = "/chat/conversations/{id}/stream",
    tag = "conversations",
    operation_id = "conversations_resume",
    params(
        ("id" = String, Path, description = "The conversation's id (`conv-…`)."),
        ResumeQuery,
        ("Last-Event-ID" = Option<String>, Header, nullable = false, pattern = r"^[0-9]{1,19}$", description = "The number of the last event read (an `EventSource` sends it when it reconnects); wins over `last_event_id`.")
    ),
    responses(
        (status = 200, description = "The turn's events after the one named, as `POST …/messages/stream` streams them.", content_type = "text/event-stream", body = ChatEvent),
        (status = 400, description = "`bad_query`: `last_event_id` is given twice.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such conversation of the caller's; `no_turn`: the conversation has no reply yet.", body = ErrorBody),
        (status = 422, description = "`bad_last_event_id`: `Last-Event-ID` or `last_event_id` is not 1 to 19 digits.", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn resume(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<ConversationId>,
    query: web::Query<ResumeQuery>,
) -> Result<HttpResponse, ApiError> {
    let conversation_id = path.into_inner();
    let conversation = conversations::owned(&state.db, &caller.user(), &conversation_id).await?;
    // Each is held to its form, also the query the header wins over.
    let by_query = query
        .last_event_id
        .as_deref()
        .map(event_number)
        .transpose()?;
    let after = match sse::last_event_id(&req)? {
        Some(id) => event_number(id)?,
        None => by_query.unwrap_or(0),
    };
    if let Some(log) = state.in_flight.log(&caller.user(), &conversation_id).await {
        return Ok(sse::response(log.subscribe(after)));
    }

    // The turn has ended: its reply is the newest message, its question the
    // one before.
    let newest = messages::page(&state.db, &caller.user(), &conversation_id, None, 2).await?;
    let (question, reply) = match newest.as_slice() {
        [question, reply] if reply.role == MessageRole::Assistant.as_str() => {
            (Some(question), reply)
        }
        [reply] if reply.role == MessageRole::Assistant.as_str() => (None, reply),
        _ => {
            return Err(ChatError::NoTurn.into());
        }
    };
    let events = stored_events(question, reply, &conversation.agent_id);
    Ok(sse::response(futures_util::stream::iter((1..).zip(events))))
}

/// A `Last-Event-ID` of a turn's stream: 1 to 19 ASCII digits, exactly
/// the document's pattern (`u64::from_str` alone would take a `+` too).
fn event_number(raw: &str) -> Result<u64, ChatError> {
    Some(raw)
        .filter(|d| (1..=19).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse().ok())
        .ok_or(ChatError::BadLastEventId(
            "Last-Event-ID must be the number of an event of the turn",
        ))
}

/// A finished turn rebuilt from storage as the events it streamed:
/// `message_start`, its text (whole), its `data` parts, `done`. Always the
/// same events for the same reply, so a client can resume them by number.
pub fn stored_events(
    question: Option<&MessageRow>,
    reply: &MessageRow,
    agent_id: &AgentId,
) -> Vec<ChatEvent> {
    let message = reply.to_api();
    let user_message_id = question
        .filter(|q| q.role == MessageRole::User.as_str())
        .map(|q| q.id.to_string())
        .unwrap_or_default();
    let mut events = vec![ChatEvent::MessageStart {
        conversation_id: message.conversation_id.clone(),
        user_message_id,
        message_id: message.id.clone(),
        agent_id: agent_id.to_string(),
    }];
    if !message.content.is_empty() {
        events.push(ChatEvent::Text {
            text: message.content.clone(),
        });
    }
    let data_blocks = message
        .content_blocks
        .as_array()
        .into_iter()
        .flatten()
        .filter(|block| block["type"] == "data");
    events.extend(data_blocks.map(|block| ChatEvent::Data {
        data: block["data"].clone(),
    }));
    events.push(ChatEvent::Done {
        message_id: message.id,
        conversation_id: message.conversation_id,
        // A reply still marked in flight belongs to a turn that never ran
        // (it has no log): it stays as it was begun.
        status: if reply.in_flight {
            MessageStatus::Incomplete
        } else {
            message.status
        },
        token_usage: message.token_usage,
    });
    events
}

#[cfg(test)]
mod tests {
    use confab_kit::Refusal;

    use super::*;

    proptest::proptest! {
        /// Exactly the strings of the document's pattern are event numbers.
        #[test]
        fn every_string_of_the_pattern_is_an_event_number(raw in "[0-9]{1,19}") {
            proptest::prop_assert_eq!(event_number(&raw).unwrap(), raw.parse::<u64>().unwrap());
        }

        #[test]
        fn strings_outside_the_pattern_are_refused(raw in r"[0-9+ -]{0,22}|\PC{0,8}") {
            let of_the_pattern = (1..=19).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit());
            proptest::prop_assert_eq!(event_number(&raw).is_ok(), of_the_pattern);
            if let Err(err) = event_number(&raw) {
                proptest::prop_assert_eq!(err.code(), "bad_last_event_id");
            }
        }
    }
}
