//! A turn's events as seed 000's client reads them: the native events,
//! except that streamed text is `{"type":"text_token","text"}` (the seed's
//! `data.type === 'text_token'`), each with an [`EventId`] of the
//! conversation.

use actix_web::web::Bytes;
use confab_protocol::chat::ChatEvent;
use confab_protocol::ids::AgentId;
use serde::Serialize;
use utoipa::ToSchema;

use super::event_id::EventId;
use crate::routes::conversations::resume::stored_events;
use crate::store::models::MessageRow;

/// One event of a turn on this path: streamed text as seed 000 reads it,
/// every other event the native one.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum SessionEvent<'a> {
    Seed(SessionOwnEvent<'a>),
    /// Every event but `text`: the native one.
    #[schema(value_type = ChatEvent)]
    Native(&'a ChatEvent),
}

/// The events of this path that differ from the native ones.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionOwnEvent<'a> {
    /// `{"type":"text_token","text"}`: a piece of the reply's text (the
    /// native `text`).
    TextToken { text: &'a str },
}

/// The event as JSON text on this path.
pub fn to_json(event: &ChatEvent) -> String {
    let event = match event {
        ChatEvent::Text { text } => SessionEvent::Seed(SessionOwnEvent::TextToken { text }),
        other => SessionEvent::Native(other),
    };
    // Serialising a value made only of strings, numbers and JSON values
    // cannot fail.
    serde_json::to_string(&event).unwrap_or_else(|_| String::from("{}"))
}

/// One SSE frame.
pub fn frame(id: EventId, event: &ChatEvent) -> Bytes {
    Bytes::from(format!("id: {id}\ndata: {}\n\n", to_json(event)))
}

/// The id of event `seq` of the log of turn `reply_seq`: its `done` is
/// `R.end`, the others `R.E`.
pub fn live_id(reply_seq: i64, seq: u64, event: &ChatEvent) -> EventId {
    match event {
        ChatEvent::Done { .. } => EventId::End { reply_seq },
        _ => EventId::Live {
            reply_seq,
            event: seq,
        },
    }
}

/// A finished turn rebuilt from storage ([`stored_events`]), with its ids,
/// so a client resumes it with `R.sE`.
pub fn stored_turn(
    question: Option<&MessageRow>,
    reply: &MessageRow,
    agent_id: &AgentId,
) -> Vec<(EventId, ChatEvent)> {
    let events = stored_events(question, reply, agent_id);
    let reply_seq = reply.seq;
    let last = events.len();
    (1..)
        .zip(events)
        .map(|(n, event)| {
            let id = if n == last {
                EventId::End { reply_seq }
            } else {
                EventId::Stored {
                    reply_seq,
                    event: n as u64,
                }
            };
            (id, event)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_a_text_token_and_the_rest_is_native() {
        let text = ChatEvent::Text { text: "4".into() };
        let retry = ChatEvent::Retry {
            attempt: 2,
            max_attempts: 3,
            delay_ms: 10,
        };
        assert_eq!(to_json(&retry), serde_json::to_string(&retry).unwrap());
        assert_eq!(
            frame(
                EventId::Live {
                    reply_seq: 2,
                    event: 3
                },
                &text
            ),
            Bytes::from("id: 2.3\ndata: {\"type\":\"text_token\",\"text\":\"4\"}\n\n")
        );
    }
}
