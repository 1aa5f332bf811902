//! A turn's events as a native SSE response (DESIGN §7): one JSON object per
//! `data:` line, the turn's sequence number as `id:`.

use std::convert::Infallible;

use actix_web::HttpResponse;
use actix_web::web::Bytes;
use confab_protocol::chat::ChatEvent;
use futures_util::{Stream, StreamExt};

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
