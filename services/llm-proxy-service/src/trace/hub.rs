//! The trace hub: numbers every event, keeps the recent ones in memory,
//! fans them out to subscribers and hands them to the recorder.
//!
//! Ordering and replay. Every event gets the next `seq` of one sequence over
//! the whole proxy (a single instance owns its database). The place in the
//! recorder's queue is reserved *before* the `seq` is taken, so at most
//! `queue_capacity + batch_size` numbered events can be unwritten at any
//! moment; the in-memory ring holds more than that. A subscriber resuming
//! with `?since=` therefore gets older events from the database, newer ones
//! from the ring, and everything after from its channel, registered under
//! the same lock as the ring snapshot: no gap, no duplicate.
//!
//! Slow subscribers. Fan-out never waits: each subscriber has a bounded
//! channel, and one that is full is dropped and told so (its WebSocket then
//! closes with 1013), so it can never slow the proxy or anyone else.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{NaiveDateTime, SecondsFormat, Utc};
use confab_protocol::trace::{TraceEvent, TraceKind};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::recorder::{Record, Recorder};
use crate::store::trace_events::TraceEventRow;

/// Who an event is about; filled in from the call's identity.
#[derive(Debug, Clone, Default)]
pub struct EventContext {
    pub call_id: String,
    pub agent_id: Option<String>,
    pub user_id: Option<String>,
    pub conversation_id: Option<String>,
}

/// What a subscriber wants: one agent's events, of one user or (admin) all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub agent_id: String,
    /// `None`: every user's events (admins only).
    pub user_id: Option<String>,
}

impl Filter {
    fn matches(&self, event: &TraceEvent) -> bool {
        event.agent_id.as_deref() == Some(self.agent_id.as_str())
            && self
                .user_id
                .as_ref()
                .is_none_or(|user| event.user_id.as_ref() == Some(user))
    }
}

struct Subscriber {
    id: u64,
    filter: Filter,
    tx: mpsc::Sender<Arc<TraceEvent>>,
    lagged: Arc<AtomicBool>,
}

struct State {
    next_seq: i64,
    ring: VecDeque<Arc<TraceEvent>>,
    ring_capacity: usize,
    subscribers: Vec<Subscriber>,
    next_subscriber: u64,
}

pub struct TraceHub {
    state: Mutex<State>,
    recorder: Recorder,
    subscriber_buffer: usize,
}

/// A new subscription: what to replay, then the live channel.
pub struct Subscription {
    pub id: u64,
    /// Older events are in the database: those with `since < seq < db_until`.
    pub db_until: Option<i64>,
    /// Then these, from memory.
    pub recent: Vec<Arc<TraceEvent>>,
    /// Then everything live.
    pub live: mpsc::Receiver<Arc<TraceEvent>>,
    /// Set when the hub dropped this subscriber for not keeping up.
    pub lagged: Arc<AtomicBool>,
}

impl TraceHub {
    /// `last_seq` is the highest `seq` already stored; `max_unwritten` the
    /// most events the recorder can hold unwritten (queue plus one batch).
    pub fn new(
        recorder: Recorder,
        last_seq: i64,
        max_unwritten: usize,
        subscriber_buffer: usize,
    ) -> Self {
        // Room for everything unwritten, and a margin for a quiet recorder.
        let ring_capacity = max_unwritten + 1024;
        Self {
            state: Mutex::new(State {
                next_seq: last_seq + 1,
                ring: VecDeque::with_capacity(ring_capacity),
                ring_capacity,
                subscribers: Vec::new(),
                next_subscriber: 1,
            }),
            recorder,
            subscriber_buffer: subscriber_buffer.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-changed
        // in a way that matters more than losing trace fan-out, so recover.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Numbers the event, fans it out and queues it for writing. Waits only
    /// when the recorder's queue is full.
    pub async fn publish(&self, context: &EventContext, kind: TraceKind, data: Value) {
        let Some(slot) = self.recorder.reserve().await else {
            return;
        };
        let now = Utc::now().naive_utc();
        let row = {
            let mut state = self.lock();
            let event = Arc::new(TraceEvent {
                seq: state.next_seq,
                kind,
                call_id: context.call_id.clone(),
                agent_id: context.agent_id.clone(),
                user_id: context.user_id.clone(),
                conversation_id: context.conversation_id.clone(),
                data,
                created_at: rfc3339(now),
            });
            state.next_seq += 1;
            if state.ring.len() == state.ring_capacity {
                state.ring.pop_front();
            }
            state.ring.push_back(event.clone());
            state.subscribers.retain(|sub| {
                if !sub.filter.matches(&event) {
                    return true;
                }
                match sub.tx.try_send(event.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        sub.lagged.store(true, Ordering::Release);
                        metrics::counter!("llm_proxy_trace_subscribers_dropped_total").increment(1);
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
            metrics::gauge!("llm_proxy_trace_subscribers").set(state.subscribers.len() as f64);
            to_row(&event, now)
        };
        slot.send(Record::Trace(row));
        self.recorder.report_depth();
    }

    /// Subscribes to `filter`, replaying what came after `since`.
    pub fn subscribe(&self, filter: Filter, since: Option<i64>) -> Subscription {
        let (tx, live) = mpsc::channel(self.subscriber_buffer);
        let lagged = Arc::new(AtomicBool::new(false));
        let mut state = self.lock();
        let id = state.next_subscriber;
        state.next_subscriber += 1;
        let (db_until, recent) = match since {
            None => (None, Vec::new()),
            Some(since) => {
                let oldest_in_memory = state.ring.front().map_or(state.next_seq, |e| e.seq);
                let recent = state
                    .ring
                    .iter()
                    .filter(|e| e.seq > since && filter.matches(e))
                    .cloned()
                    .collect();
                let db_until = (since + 1 < oldest_in_memory).then_some(oldest_in_memory);
                (db_until, recent)
            }
        };
        state.subscribers.push(Subscriber {
            id,
            filter,
            tx,
            lagged: lagged.clone(),
        });
        metrics::gauge!("llm_proxy_trace_subscribers").set(state.subscribers.len() as f64);
        Subscription {
            id,
            db_until,
            recent,
            live,
            lagged,
        }
    }

    pub fn unsubscribe(&self, id: u64) {
        let mut state = self.lock();
        state.subscribers.retain(|sub| sub.id != id);
        metrics::gauge!("llm_proxy_trace_subscribers").set(state.subscribers.len() as f64);
    }
}

fn to_row(event: &TraceEvent, now: NaiveDateTime) -> TraceEventRow {
    TraceEventRow {
        seq: event.seq,
        kind: event.kind.as_str().to_owned(),
        call_id: event.call_id.clone(),
        agent_id: event.agent_id.clone(),
        user_id: event.user_id.clone(),
        conversation_id: event.conversation_id.clone(),
        data: event.data.to_string(),
        created_at: now,
    }
}

/// A stored row as the event it was.
pub fn from_row(row: TraceEventRow) -> TraceEvent {
    TraceEvent {
        seq: row.seq,
        kind: TraceKind::parse(&row.kind).unwrap_or(TraceKind::Error),
        call_id: row.call_id,
        agent_id: row.agent_id,
        user_id: row.user_id,
        conversation_id: row.conversation_id,
        data: serde_json::from_str(&row.data).unwrap_or(Value::Null),
        created_at: rfc3339(row.created_at),
    }
}

pub fn rfc3339(ts: NaiveDateTime) -> String {
    ts.and_utc().to_rfc3339_opts(SecondsFormat::Millis, true)
}
