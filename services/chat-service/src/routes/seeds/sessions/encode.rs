//! A turn's events as seed 000's client reads them: the native events,
//! except that streamed text is `{"type":"text_token","text"}` (the seed's
//! `data.type === 'text_token'`), each with an [`EventId`] of the
//! conversation.

use actix_web::web::Bytes;
use confab_protocol::chat::ChatEvent;
use confab_protocol::ids::AgentId;
use serde::Serialize;

use super::event_id::EventId;
use crate::routes::conversations::resume::stored_events;
use crate::store::models::MessageRow;

/// `{"type":"text_token","text"}`, `type` first as in the native events.
#[derive(Serialize)]
struct TextToken<'a> {
    r#type: &'static str,
    text: &'a str,
}

/// The event as JSON text on this path.
pub fn to_json(event: &ChatEvent) -> String {
    // Serialising a value made only of strings, numbers and JSON values
    // cannot fail.
    let json = match event {
        ChatEvent::Text { text } => serde_json::to_string(&TextToken {
            r#type: "text_token",
            text,
        }),
        other => serde_json::to_string(other),
    };
    json.unwrap_or_else(|_| String::from("{}"))
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
