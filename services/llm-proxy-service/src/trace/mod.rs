//! Live trace events: the hub that puts them on the bus, the subscriptions
//! that read them back (with what the database keeps), and the WebSocket
//! that streams them to the people debugging an agent.

pub mod hub;
pub mod subject;
pub mod subscription;
pub mod ws;

use std::time::Duration;

use confab_kit::bus::StreamSpec;
use serde::Deserialize;

/// `[trace]`.
#[derive(Debug, Clone, Deserialize)]
pub struct TraceSettings {
    /// Events a subscriber may have waiting before it is dropped (1013).
    pub subscriber_buffer: usize,
    /// Subscriptions one user may have open at once; 0: no limit.
    pub subscribers_per_user: usize,
    pub heartbeat_secs: u64,
    pub client_timeout_secs: u64,
    /// How long the bus's trace stream keeps an event; older ones are
    /// replayed from the database.
    pub stream_max_age_secs: u64,
    /// The most the trace stream keeps, in bytes; the oldest events go first.
    pub stream_max_bytes: u64,
}

impl TraceSettings {
    /// The bus stream every trace event goes through.
    pub fn stream(&self) -> StreamSpec {
        StreamSpec {
            name: subject::STREAM.to_owned(),
            subjects: format!("{}.>", subject::STREAM),
            max_age: Duration::from_secs(self.stream_max_age_secs),
            max_bytes: self.stream_max_bytes,
        }
    }
}
