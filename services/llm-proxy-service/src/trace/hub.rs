//! The trace hub: numbers every event, keeps the recent ones in memory,
//! fans them out to subscribers and hands them to the recorder.
//!
//! Replay. Every event gets the next `seq` of one sequence over the whole
//! proxy (a single instance owns its database). The place in the
//! recorder's queue is reserved *before* the `seq` is taken, so at most
//! `queue_capacity + batch_size` numbered events can be unwritten at any
//! moment; the in-memory ring holds more than that. A subscriber resuming
//! with `?since=` therefore gets older events from the database, newer ones
//! from the ring, and everything after from its channel.
//!
//! Fan-out. Subscribers are kept in shards by what they filter on: one
//! shard per agent and user, and one per agent for the admins who follow
//! every user. An event touches at most two shards (its agent and user's,
//! its agent's all-users one), never anyone else's subscribers. The hub's
//! one lock (the sequence, the ring, the shard map) is held only to number
//! the event, remember it and find its shards; the sends happen under each
//! shard's own lock.
//!
//! Ordering: every subscriber gets its events in `seq` order, with no gap
//! and no duplicate, by lock coupling. A publisher takes the locks of its
//! event's shards *before* it lets go of the hub's lock, and sends after.
//! So for one shard, the publisher of `seq` n holds the shard's lock before
//! the publisher of n+1 can even take the hub's lock (which it needs to be
//! numbered n+1), and n+1 then waits for the shard until n has sent: sends
//! into a shard happen in `seq` order. A new subscriber takes the hub's
//! lock, snapshots the ring (every event numbered so far) and joins its
//! shard under the shard's lock, still holding the hub's: an older event
//! still being sent to that shard is sent before it joins (and is in its
//! snapshot), and a newer one cannot be numbered before it has joined. So
//! each event is either replayed or live, exactly once. Locks are always
//! taken hub first, then shards (a user's before its agent's all-users
//! one), and nobody waits for anything while holding a shard's lock, so
//! there is no deadlock. The hub's lock can wait for a shard whose previous
//! event is still being sent; that is a handful of `try_send`s, because a
//! user may hold only `trace.subscribers_per_user` subscriptions.
//!
//! Slow subscribers. Fan-out never waits: each subscriber has a bounded
//! channel, and one that is full is dropped and told so (its WebSocket then
//! closes with 1013), so it can never slow the proxy or anyone else.

use std::collections::{HashMap, VecDeque};
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
    tx: mpsc::Sender<Arc<TraceEvent>>,
    lagged: Arc<AtomicBool>,
}

/// The subscribers of one filter.
#[derive(Default)]
struct Shard {
    subscribers: Mutex<Vec<Subscriber>>,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, Vec<Subscriber>> {
        // Sends and membership changes leave the list whole even when
        // interrupted; keep serving it.
        self.subscribers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The shards of one agent.
#[derive(Default)]
struct AgentShards {
    /// Admins following every user.
    all_users: Option<Arc<Shard>>,
    by_user: HashMap<String, Arc<Shard>>,
}

struct State {
    next_seq: i64,
    ring: VecDeque<Arc<TraceEvent>>,
    ring_capacity: usize,
    shards: HashMap<String, AgentShards>,
    subscribers: usize,
    next_subscriber: u64,
}

impl State {
    /// The shards an event goes to: its user's, then its agent's all-users
    /// one (the order every publisher locks them in).
    fn matching(&self, event: &TraceEvent) -> [Option<Arc<Shard>>; 2] {
        let Some(agent) = event.agent_id.as_deref().and_then(|a| self.shards.get(a)) else {
            return [None, None];
        };
        let user = event
            .user_id
            .as_deref()
            .and_then(|u| agent.by_user.get(u))
            .cloned();
        [user, agent.all_users.clone()]
    }

    fn shard(&mut self, filter: &Filter) -> Arc<Shard> {
        let agent = self.shards.entry(filter.agent_id.clone()).or_default();
        match &filter.user_id {
            Some(user) => agent.by_user.entry(user.clone()).or_default().clone(),
            None => agent.all_users.get_or_insert_default().clone(),
        }
    }

    fn existing_shard(&self, filter: &Filter) -> Option<Arc<Shard>> {
        let agent = self.shards.get(&filter.agent_id)?;
        match &filter.user_id {
            Some(user) => agent.by_user.get(user).cloned(),
            None => agent.all_users.clone(),
        }
    }

    fn remove_shard(&mut self, filter: &Filter) {
        let Some(agent) = self.shards.get_mut(&filter.agent_id) else {
            return;
        };
        match &filter.user_id {
            Some(user) => {
                agent.by_user.remove(user);
            }
            None => agent.all_users = None,
        }
        if agent.all_users.is_none() && agent.by_user.is_empty() {
            self.shards.remove(&filter.agent_id);
        }
    }
}

pub struct TraceHub {
    state: Mutex<State>,
    recorder: Recorder,
    subscriber_buffer: usize,
}

/// A new subscription: what to replay, then the live channel. Dropping it
/// unsubscribes.
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
    hub: Arc<TraceHub>,
    filter: Filter,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.id, &self.filter);
    }
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
                shards: HashMap::new(),
                subscribers: 0,
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
        let shards = state.matching(&event);
        // Lock coupling (see the module doc): the shards' locks before the
        // hub's is let go, the sends after.
        let mut locked = shards
            .each_ref()
            .map(|shard| shard.as_deref().map(Shard::lock));
        drop(state);
        for subscribers in locked.iter_mut().flatten() {
            deliver(subscribers, &event);
        }
        drop(locked);
        slot.send(Record::Trace(to_row(&event, now)));
        self.recorder.report_depth();
    }

    /// Subscribes to `filter`, replaying what came after `since`; dropping
    /// the subscription unsubscribes.
    pub fn subscribe(self: &Arc<Self>, filter: Filter, since: Option<i64>) -> Subscription {
        let (tx, live) = mpsc::channel(self.subscriber_buffer);
        let lagged = Arc::new(AtomicBool::new(false));
        let mut state = self.lock();
        let id = state.next_subscriber;
        state.next_subscriber += 1;
        let (db_until, recent) = match since {
            None => (None, Vec::new()),
            Some(since) => {
                let oldest_in_memory = state.ring.front().map_or(state.next_seq, |e| e.seq);
                // The ring is in `seq` order: skip what the client has.
                let after = state.ring.partition_point(|e| e.seq <= since);
                let recent = state
                    .ring
                    .range(after..)
                    .filter(|e| filter.matches(e))
                    .cloned()
                    .collect();
                let db_until = (since + 1 < oldest_in_memory).then_some(oldest_in_memory);
                (db_until, recent)
            }
        };
        // Joins under the shard's lock, the hub's still held (module doc).
        state.shard(&filter).lock().push(Subscriber {
            id,
            tx,
            lagged: lagged.clone(),
        });
        state.subscribers += 1;
        metrics::gauge!("llm_proxy_trace_subscribers").set(state.subscribers as f64);
        drop(state);
        Subscription {
            id,
            db_until,
            recent,
            live,
            lagged,
            hub: self.clone(),
            filter,
        }
    }

    fn unsubscribe(&self, id: u64, filter: &Filter) {
        let mut state = self.lock();
        state.subscribers = state.subscribers.saturating_sub(1);
        metrics::gauge!("llm_proxy_trace_subscribers").set(state.subscribers as f64);
        let Some(shard) = state.existing_shard(filter) else {
            return;
        };
        let mut subscribers = shard.lock();
        subscribers.retain(|sub| sub.id != id);
        let empty = subscribers.is_empty();
        drop(subscribers);
        if empty {
            state.remove_shard(filter);
        }
    }
}

/// Sends `event` to every subscriber of a shard, never waiting: one whose
/// channel is full is dropped (and told so), one that is gone is removed.
fn deliver(subscribers: &mut Vec<Subscriber>, event: &Arc<TraceEvent>) {
    subscribers.retain(|sub| match sub.tx.try_send(event.clone()) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            sub.lagged.store(true, Ordering::Release);
            metrics::counter!("llm_proxy_trace_subscribers_dropped_total").increment(1);
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    });
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
