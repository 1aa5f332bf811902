//! One trace subscriber: the events it missed, then the live ones, each
//! once, in `seq` order, whichever instance's calls they come from.
//!
//! Each subscriber reads the bus itself: one bus subscription on its own
//! subject (`subject::filter`), so the bus does the filtering and sends an
//! instance only what its subscribers asked for.
//!
//! Replay (`?since=`). The stream keeps events for a while (`[trace]
//! stream_max_age_secs`, `stream_max_bytes`); the database keeps them all.
//! The boundary between the two is observed rather than asked for: the
//! subscription reads the stream from `since + 1`, and the first message it
//! delivers, at `f`, shows that the filter's events between `since` and `f`
//! are ones the stream no longer keeps (it delivers in order, so it would
//! have delivered them first). Those come from the database, then the
//! stream's from `f` on: whatever the stream lets go meanwhile, nothing is
//! sent twice or skipped. This needs an event to leave the stream only
//! after its instance wrote it, which retention far longer than the
//! recorder's delay gives (config/default.toml).
//!
//! Where the replay ends: before subscribing, a replaying subscriber puts
//! an empty message (a marker) on a subject of its filter. What the stream
//! delivers before the marker is the replay, followed by the `live` frame;
//! what comes after is live. Every reader skips markers (empty payloads);
//! they are never recorded.
//!
//! Live. A task per subscriber moves its messages from the bus to a bounded
//! channel without ever waiting. A subscriber whose channel is full (it does
//! not read its socket) is dropped and told so (1013): it never holds
//! anyone else back, and reconnects with `since=`.

use std::collections::VecDeque;
use std::sync::Arc;

use actix_web::web::Bytes;
use confab_kit::bus::{self, Bus, BusError, Message};
use confab_kit::db::{Db, DbError};
use confab_protocol::trace::TraceFrame;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::hub::from_row;
use super::subject;
use crate::store::trace_events::{self, EventFilter, TraceEventRow};

/// Rows read from the database per replay query.
const REPLAY_PAGE: i64 = 500;

/// What a subscriber wants: one agent's events, of one user or (admin) all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub agent_id: String,
    /// `None`: every user's events (admins only).
    pub user_id: Option<String>,
}

/// A `trace` frame to send, and the `seq` of its event.
pub struct Frame {
    pub seq: i64,
    pub text: String,
}

/// Why the live events stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The subscriber did not keep up and was dropped.
    Lagged,
    /// The bus subscription failed.
    BusFailed,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("reading stored events: {0}")]
    Db(#[from] DbError),
    #[error("reading the trace stream: {0}")]
    Bus(#[from] BusError),
    #[error("the trace stream ended")]
    Ended,
}

/// A subscription; dropping it unsubscribes.
pub struct Subscription {
    filter: Filter,
    db: Db,
    /// Read here during the replay; then the pump's.
    bus: Option<bus::Subscription>,
    replay: Option<Replay>,
    /// The first live message, when the replay read it.
    carried: Option<Message>,
    /// The `seq` the client has everything up to.
    last_seq: i64,
    buffer: usize,
    live: Option<mpsc::Receiver<Frame>>,
    stopped: Arc<std::sync::Mutex<Option<Stopped>>>,
    pump: Option<tokio::task::JoinHandle<()>>,
}

/// Where a replay is.
struct Replay {
    /// The marker's `seq`: the stream's messages before it are the replay.
    marker: u64,
    /// Set by the first message the stream delivered: the database has the
    /// events before it.
    db_until: Option<i64>,
    /// The database's rows up to here were read.
    db_after: i64,
    db_done: bool,
    rows: VecDeque<TraceEventRow>,
    /// The first message, held while the database's rows go out.
    held: Option<Message>,
}

impl Subscription {
    pub(super) async fn start(
        bus: &Bus,
        db: Db,
        filter: Filter,
        since: Option<i64>,
        buffer: usize,
    ) -> Result<Self, BusError> {
        let subject = subject::filter(&filter.agent_id, filter.user_id.as_deref());
        let last = bus.last_seq(subject::STREAM).await?;
        let since = since.map(|since| u64::try_from(since).unwrap_or(0));
        let (from, replay, last_seq) = match since {
            None => (last + 1, None, last),
            Some(since) if since >= last => (since + 1, None, since),
            Some(since) => {
                let marker_subject = subject::marker(&filter.agent_id, filter.user_id.as_deref());
                let marker = bus.publish(&marker_subject, Bytes::new()).await?;
                let replay = Replay {
                    marker,
                    db_until: None,
                    db_after: to_i64(since),
                    db_done: false,
                    rows: VecDeque::new(),
                    held: None,
                };
                (since + 1, Some(replay), since)
            }
        };
        let subscription = bus.subscribe(subject::STREAM, &subject, from).await?;
        metrics::gauge!("llm_proxy_trace_subscribers").increment(1.0);
        Ok(Self {
            filter,
            db,
            bus: Some(subscription),
            replay,
            carried: None,
            last_seq: to_i64(last_seq),
            buffer: buffer.max(1),
            live: None,
            stopped: Arc::default(),
            pump: None,
        })
    }

    /// The `seq` the client has every event up to: what the `live` frame
    /// says, once the replay is done.
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    /// The next event of the replay, `None` once it is done.
    pub async fn replayed(&mut self) -> Result<Option<Frame>, ReplayError> {
        let Some(replay) = &mut self.replay else {
            return Ok(None);
        };
        loop {
            if let Some(row) = replay.rows.pop_front() {
                self.last_seq = row.seq;
                return Ok(Some(row_frame(row)));
            }
            if let Some(until) = replay.db_until
                && !replay.db_done
            {
                let page = trace_events::list(
                    &self.db,
                    &EventFilter {
                        agent_id: Some(self.filter.agent_id.clone()),
                        user_id: self.filter.user_id.clone(),
                        conversation_id: None,
                        after_seq: replay.db_after,
                        before_seq: Some(until),
                        limit: REPLAY_PAGE,
                    },
                )
                .await?;
                replay.db_done = (page.len() as i64) < REPLAY_PAGE;
                if let Some(last) = page.last() {
                    replay.db_after = last.seq;
                }
                replay.rows.extend(page);
                continue;
            }
            let message = match replay.held.take() {
                Some(message) => message,
                None => match self.bus.as_mut() {
                    Some(bus) => bus.next().await.ok_or(ReplayError::Ended)??,
                    None => return Err(ReplayError::Ended),
                },
            };
            if replay.db_until.is_none() {
                replay.db_until = Some(to_i64(message.seq));
                replay.held = Some(message);
                continue;
            }
            if message.seq >= replay.marker {
                // The marker, or (if the stream already let it go) the
                // first live message after it.
                if message.seq > replay.marker && !message.payload.is_empty() {
                    self.carried = Some(message);
                }
                self.replay = None;
                return Ok(None);
            }
            if let Some(frame) = frame(&message) {
                self.last_seq = frame.seq;
                return Ok(Some(frame));
            }
        }
    }

    /// Starts the live events (after the replay); read them with
    /// [`Subscription::next_live`].
    pub fn go_live(&mut self) {
        let Some(bus) = self.bus.take() else {
            return;
        };
        let (tx, rx) = mpsc::channel(self.buffer);
        self.live = Some(rx);
        let carried = self.carried.take();
        self.pump = Some(tokio::spawn(pump(
            bus,
            carried,
            tx,
            Arc::clone(&self.stopped),
        )));
    }

    /// The next live event; `None` when they stopped ([`Subscription::stopped`]
    /// says why).
    pub async fn next_live(&mut self) -> Option<Frame> {
        let frame = self.live.as_mut()?.recv().await?;
        self.last_seq = frame.seq;
        Some(frame)
    }

    pub fn stopped(&self) -> Option<Stopped> {
        *self
            .stopped
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(pump) = &self.pump {
            pump.abort();
        }
        metrics::gauge!("llm_proxy_trace_subscribers").decrement(1.0);
    }
}

/// Moves live messages into the subscriber's channel, never waiting: a full
/// channel drops the subscriber.
async fn pump(
    mut bus: bus::Subscription,
    carried: Option<Message>,
    tx: mpsc::Sender<Frame>,
    stopped: Arc<std::sync::Mutex<Option<Stopped>>>,
) {
    let stop = |why: Stopped| {
        *stopped
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(why);
    };
    let mut next = carried;
    loop {
        let message = match next.take() {
            Some(message) => message,
            None => match bus.next().await {
                Some(Ok(message)) => message,
                Some(Err(error)) => {
                    tracing::warn!(%error, "a trace subscription failed");
                    return stop(Stopped::BusFailed);
                }
                None => return stop(Stopped::BusFailed),
            },
        };
        let Some(frame) = frame(&message) else {
            continue;
        };
        match tx.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("llm_proxy_trace_subscribers_dropped_total").increment(1);
                return stop(Stopped::Lagged);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

/// The `trace` frame of a message from the bus: its payload (an event's
/// JSON without `seq`, `hub::OnTheBus`) with `seq` put in front. `None` for
/// a marker, or a payload that is not a JSON object.
fn frame(message: &Message) -> Option<Frame> {
    let payload = std::str::from_utf8(&message.payload).ok()?;
    let fields = payload.strip_prefix('{')?;
    if !fields.starts_with('"') {
        return None;
    }
    let seq = to_i64(message.seq);
    Some(Frame {
        seq,
        text: format!(r#"{{"type":"trace","event":{{"seq":{seq},{fields}}}"#),
    })
}

fn row_frame(row: TraceEventRow) -> Frame {
    let seq = row.seq;
    let frame = TraceFrame::Trace {
        event: from_row(row),
    };
    Frame {
        seq,
        text: serde_json::to_string(&frame).unwrap_or_default(),
    }
}

fn to_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use confab_protocol::trace::{TraceEvent, TraceKind};
    use serde_json::json;

    use super::super::hub::OnTheBus;
    use super::*;

    #[test]
    fn a_frame_from_the_bus_is_the_frame_of_the_event() {
        let event = TraceEvent {
            seq: 42,
            kind: TraceKind::Delta,
            call_id: "call-1".into(),
            agent_id: Some("math".into()),
            user_id: None,
            conversation_id: Some("conv-\"1\"".into()),
            data: json!({"content": "two {\"}", "n": [1, 2]}),
            created_at: "2026-12-04T10:00:00.000Z".into(),
        };
        let data = serde_json::value::to_raw_value(&event.data).unwrap();
        let payload = serde_json::to_vec(&OnTheBus {
            kind: event.kind,
            call_id: &event.call_id,
            agent_id: event.agent_id.as_deref(),
            user_id: event.user_id.as_deref(),
            conversation_id: event.conversation_id.as_deref(),
            data: &data,
            created_at: &event.created_at,
        })
        .unwrap();
        let message = Message {
            subject: "trace.math._".into(),
            seq: 42,
            payload: payload.into(),
        };
        let frame = frame(&message).unwrap();
        assert_eq!(frame.seq, 42);
        let parsed: TraceFrame = serde_json::from_str(&frame.text).unwrap();
        assert_eq!(
            parsed,
            TraceFrame::Trace {
                event: event.clone()
            }
        );
        assert_eq!(
            frame.text,
            serde_json::to_string(&TraceFrame::Trace { event }).unwrap()
        );
    }

    #[test]
    fn markers_and_payloads_that_are_not_objects_make_no_frame() {
        for payload in ["", "{}", "[1]", "x"] {
            let message = Message {
                subject: "trace.math._".into(),
                seq: 1,
                payload: Bytes::from(payload),
            };
            assert!(frame(&message).is_none(), "{payload:?}");
        }
    }
}
