//! W3C trace context (`traceparent`) across hops (DESIGN §11).
//!
//! Every request gets a trace context: the caller's when it sent a valid
//! `traceparent`, otherwise a new trace. The request's own hop has a new span
//! id under the caller's, and that is what goes to the next service, so each
//! service appears as one hop of one trace. When OTLP export is on, the ids
//! are those of the request's exported span; without it they are made the
//! same way by the SDK's random id generator, so the header is always there
//! and always valid. Parsing and formatting are the OpenTelemetry
//! propagator's, not ours.

use actix_web::http::header::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const TRACEPARENT: &str = "traceparent";

/// The caller's trace context from `traceparent`/`tracestate`; an empty
/// context when absent or invalid.
pub fn incoming(headers: &HeaderMap) -> opentelemetry::Context {
    if !headers.contains_key(TRACEPARENT) {
        // What the propagator would return, without its work.
        return opentelemetry::Context::new();
    }
    TraceContextPropagator::new().extract(&Headers(headers))
}

/// The request's headers as the propagator reads them (no copies).
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The `traceparent` this request's hop passes on: the exported span's
/// context when there is one, else a new span id under the caller's trace
/// (or a new, sampled trace when the caller sent none).
pub fn for_this_hop(span: &tracing::Span, parent: &opentelemetry::Context) -> String {
    let exported = span.context().span().span_context().clone();
    let context = if exported.is_valid() {
        exported
    } else {
        let ids = RandomIdGenerator::default();
        let caller = parent.span().span_context().clone();
        let (trace_id, flags, state) = if caller.is_valid() {
            (
                caller.trace_id(),
                caller.trace_flags(),
                caller.trace_state().clone(),
            )
        } else {
            (
                ids.new_trace_id(),
                TraceFlags::SAMPLED,
                TraceState::default(),
            )
        };
        SpanContext::new(trace_id, ids.new_span_id(), flags, false, state)
    };
    let mut header = String::with_capacity(55);
    header.push_str("00-");
    push_hex(&mut header, &context.trace_id().to_bytes());
    header.push('-');
    push_hex(&mut header, &context.span_id().to_bytes());
    header.push('-');
    push_hex(&mut header, &[context.trace_flags().to_u8()]);
    header
}

/// Lower-case hex, as trace context writes its ids. The gateway makes this
/// header for every proxied request, so it skips `format!`'s machinery
/// (`infra/bench/README.md`).
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};
    use opentelemetry::trace::{SpanId, TraceId};

    use super::*;

    fn headers(traceparent: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("traceparent"),
            HeaderValue::from_str(traceparent).unwrap(),
        );
        headers
    }

    fn parts(traceparent: &str) -> Vec<String> {
        traceparent.split('-').map(str::to_owned).collect()
    }

    #[test]
    fn a_callers_trace_is_continued_with_a_new_span() {
        let theirs = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parent = incoming(&headers(theirs));
        let ours = parts(&for_this_hop(&tracing::Span::none(), &parent));
        assert_eq!(ours[0], "00");
        assert_eq!(ours[1], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(ours[2], "00f067aa0ba902b7");
        assert_eq!(ours[2].len(), 16);
        assert_eq!(ours[3], "01");
        assert!(
            ours[2]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }

    #[test]
    fn a_hop_is_written_as_the_propagator_writes_it() {
        let theirs = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
        let parent = incoming(&headers(theirs));
        let ours = for_this_hop(&tracing::Span::none(), &parent);
        let span = parts(&ours)[2].clone();
        let context = SpanContext::new(
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap(),
            SpanId::from_hex(&span).unwrap(),
            TraceFlags::default(),
            true,
            TraceState::default(),
        );
        let mut injected = std::collections::HashMap::new();
        TraceContextPropagator::new().inject_context(
            &opentelemetry::Context::new().with_remote_span_context(context),
            &mut injected,
        );
        assert_eq!(injected["traceparent"], ours);
    }

    #[test]
    fn a_missing_or_invalid_traceparent_starts_a_new_trace() {
        for theirs in [
            None,
            Some("garbage"),
            Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        ] {
            let parent = match theirs {
                Some(value) => incoming(&headers(value)),
                None => incoming(&HeaderMap::new()),
            };
            let ours = parts(&for_this_hop(&tracing::Span::none(), &parent));
            assert_eq!(ours.len(), 4);
            assert_eq!(ours[1].len(), 32);
            assert_ne!(ours[1], "00000000000000000000000000000000");
            assert_eq!(ours[3], "01");
        }
    }
}
