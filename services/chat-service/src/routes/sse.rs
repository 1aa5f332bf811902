//! A turn's events as a native SSE response (DESIGN §7): one JSON object per
//! `data:` line, the turn's sequence number as `id:`.

use std::convert::Infallible;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use confab_protocol::chat::ChatEvent;
use futures_util::{Stream, StreamExt};

use crate::error::ChatError;

pub fn response(events: impl Stream<Item = (u64, ChatEvent)> + 'static) -> HttpResponse {
    frames(events.map(|(seq, event)| Bytes::from(event.to_sse(seq))))
}

/// An SSE response of frames already encoded.
pub fn frames(frames: impl Stream<Item = Bytes> + 'static) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        // Tells a buffering reverse proxy (nginx) to pass events on at once.
        .insert_header(("x-accel-buffering", "no"))
        .streaming(frames.map(Ok::<_, Infallible>))
}

/// The `Last-Event-ID` header as sent: `None` when absent. Unlike kit's
/// `header`, an empty or non-text one is not taken as absent but refused
/// (422 `bad_last_event_id`): the document gives the header a pattern no
/// empty value matches, and an `EventSource` never sends one empty.
pub fn last_event_id(req: &HttpRequest) -> Result<Option<&str>, ChatError> {
    req.headers()
        .get("last-event-id")
        .map(|value| {
            value
                .to_str()
                .ok()
                .filter(|id| !id.is_empty())
                .ok_or(ChatError::BadLastEventId(
                    "Last-Event-ID is empty or not text",
                ))
        })
        .transpose()
}
