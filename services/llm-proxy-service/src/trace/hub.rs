//! The trace hub: every trace event goes on the bus's `trace` stream, whose
//! sequence number is the event's `seq`: one order over the calls of every
//! instance, which the subscribers of every instance read
//! ([`subscription`](super::subscription)).
//!
//! Publishing. An event goes on `trace.<agent>.<user>` ([`subject`]); the
//! stream answers its number, and the event goes to this instance's
//! recorder with it: each instance records the events of its own calls, so
//! `trace_events.seq` is the stream's. The recorder's place is reserved
//! before the event is published, so a full queue holds callers back as it
//! always did, and an event the stream numbered is always recorded. A call
//! publishes its events one after the other, so they are numbered in the
//! order they happened.
//!
//! When the bus cannot take an event (NATS is down), the call waits and
//! publishing is tried again, with backoff, until the bus is back: an event
//! without its number could be neither streamed nor recorded. The attempts
//! carry one id, so the stream keeps the event once however many arrive.
//!
//! Numbering across restarts: at start-up the stream is told to continue
//! after the database's highest `seq` (`Bus::continue_after`), which matters
//! in process (a new stream each run) and for a NATS stream that was lost.

use std::time::Duration;

use actix_web::web::Bytes;
use chrono::{NaiveDateTime, SecondsFormat, Utc};
use confab_kit::bus::{Bus, BusError};
use confab_kit::db::Db;
use confab_protocol::trace::{TraceEvent, TraceKind};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::TraceSettings;
use super::subject;
use super::subscription::{Filter, Subscription};
use crate::recorder::{Record, Recorder};
use crate::store::trace_events::{self, TraceEventRow};

/// First and longest wait between attempts to publish an event.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Who an event is about; filled in from the call's identity.
#[derive(Debug, Clone, Default)]
pub struct EventContext {
    pub call_id: String,
    pub agent_id: Option<String>,
    pub user_id: Option<String>,
    pub conversation_id: Option<String>,
}

/// An event as it travels on the bus: a [`TraceEvent`]'s JSON without its
/// `seq` (the stream gives that), fields in the same order, so that a
/// subscriber makes the WebSocket frame by putting `seq` in front
/// (`subscription::frame`) instead of parsing it.
#[derive(Serialize)]
pub(super) struct OnTheBus<'a> {
    pub kind: TraceKind,
    pub call_id: &'a str,
    pub agent_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub conversation_id: Option<&'a str>,
    pub data: &'a RawValue,
    pub created_at: &'a str,
}

/// An event read back from the bus ([`OnTheBus`]).
#[derive(Deserialize)]
struct FromTheBus {
    kind: TraceKind,
    call_id: String,
    agent_id: Option<String>,
    user_id: Option<String>,
    conversation_id: Option<String>,
    data: Value,
    created_at: String,
}

/// How long reading a call's events back waits for the next message.
const READ_BACK_TIMEOUT: Duration = Duration::from_secs(30);

pub struct TraceHub {
    bus: Bus,
    db: Db,
    recorder: Recorder,
    settings: TraceSettings,
}

impl TraceHub {
    /// The hub of this instance; makes sure the stream exists and numbers
    /// past what the database holds.
    pub async fn start(
        bus: Bus,
        db: Db,
        recorder: Recorder,
        settings: TraceSettings,
    ) -> anyhow::Result<Self> {
        let hub = Self {
            bus,
            db,
            recorder,
            settings,
        };
        hub.declare().await?;
        Ok(hub)
    }

    async fn declare(&self) -> anyhow::Result<()> {
        self.bus.stream(&self.settings.stream()).await?;
        let stored = trace_events::max_seq(&self.db).await?;
        self.bus
            .continue_after(subject::STREAM, u64::try_from(stored).unwrap_or(0))
            .await?;
        Ok(())
    }

    /// Numbers the event on the bus and queues it for writing. Waits while
    /// the recorder's queue is full or the bus is unreachable.
    pub async fn publish(&self, context: &EventContext, kind: TraceKind, data: Value) {
        let Some(slot) = self.recorder.reserve().await else {
            return;
        };
        let now = Utc::now().naive_utc();
        let created_at = rfc3339(now);
        // Written once, for the bus and the row alike (a delta per token).
        let data = match serde_json::value::to_raw_value(&data) {
            Ok(data) => data,
            Err(err) => {
                tracing::error!(error = %err, "a trace event's data could not be written");
                return;
            }
        };
        let payload = OnTheBus {
            kind,
            call_id: &context.call_id,
            agent_id: context.agent_id.as_deref(),
            user_id: context.user_id.as_deref(),
            conversation_id: context.conversation_id.as_deref(),
            data: &data,
            created_at: &created_at,
        };
        let payload = Bytes::from(serde_json::to_vec(&payload).unwrap_or_default());
        let subject = subject::of_event(context.agent_id.as_deref(), context.user_id.as_deref());
        let Some(seq) = self.publish_until_taken(&subject, payload).await else {
            return;
        };
        slot.send(Record::Trace(TraceEventRow {
            seq,
            kind: kind.as_str().to_owned(),
            call_id: context.call_id.clone(),
            agent_id: context.agent_id.clone(),
            user_id: context.user_id.clone(),
            conversation_id: context.conversation_id.clone(),
            data: data.get().to_owned(),
            created_at: now,
        }));
        self.recorder.report_depth();
    }

    /// The event's `seq`, once the bus has taken it. Every attempt carries
    /// the event's own id, so an attempt that timed out but was stored is
    /// not kept twice (`Bus::publish_once`).
    async fn publish_until_taken(&self, subject: &str, payload: Bytes) -> Option<i64> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut delay = RETRY_FIRST;
        loop {
            let attempt = self.bus.publish_once(subject, &id, payload.clone()).await;
            let error = match attempt {
                Ok(seq) => return Some(i64::try_from(seq).unwrap_or(i64::MAX)),
                Err(error) => error,
            };
            metrics::counter!("llm_proxy_trace_publish_failures_total").increment(1);
            match error {
                // `subject::of_event` makes valid subjects only.
                BusError::InvalidName(_) => {
                    tracing::error!(%error, "a trace event has no valid subject; dropped");
                    return None;
                }
                // Someone removed the stream: make it again, numbering on.
                BusError::NoStream(_) => {
                    if let Err(error) = self.declare().await {
                        tracing::warn!(%error, "declaring the trace stream failed");
                    }
                }
                _ => tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64,
                    "the bus did not take a trace event; retrying"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(RETRY_MAX);
        }
    }

    /// The events of `call` that the stream still keeps, from `from` on:
    /// what a dead instance published but may not have written. Read up to
    /// a marker put on the call's subject first (as `subscription` does).
    pub async fn kept_events(
        &self,
        call: &EventContext,
        from: i64,
    ) -> anyhow::Result<Vec<TraceEventRow>> {
        let subject = subject::of_event(call.agent_id.as_deref(), call.user_id.as_deref());
        let marker = self.bus.publish(&subject, Bytes::new()).await?;
        let from = u64::try_from(from).unwrap_or(0);
        let mut messages = self.bus.subscribe(subject::STREAM, &subject, from).await?;
        let mut events = Vec::new();
        loop {
            let message = tokio::time::timeout(READ_BACK_TIMEOUT, messages.next())
                .await
                .map_err(|_| anyhow::anyhow!("reading back the events of {}", call.call_id))?
                .ok_or_else(|| anyhow::anyhow!("the trace stream ended"))??;
            if message.seq >= marker {
                return Ok(events);
            }
            let Ok(event) = serde_json::from_slice::<FromTheBus>(&message.payload) else {
                continue;
            };
            if event.call_id != call.call_id {
                continue;
            }
            let created_at = chrono::DateTime::parse_from_rfc3339(&event.created_at)
                .map(|at| at.naive_utc())
                .unwrap_or_else(|_| Utc::now().naive_utc());
            events.push(TraceEventRow {
                seq: i64::try_from(message.seq).unwrap_or(i64::MAX),
                kind: event.kind.as_str().to_owned(),
                call_id: event.call_id,
                agent_id: event.agent_id,
                user_id: event.user_id,
                conversation_id: event.conversation_id,
                data: event.data.to_string(),
                created_at,
            });
        }
    }

    /// Subscribes to `filter`, replaying what came after `since` first.
    pub async fn subscribe(
        &self,
        filter: Filter,
        since: Option<i64>,
    ) -> Result<Subscription, BusError> {
        Subscription::start(
            &self.bus,
            self.db.clone(),
            filter,
            since,
            self.settings.subscriber_buffer,
        )
        .await
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
