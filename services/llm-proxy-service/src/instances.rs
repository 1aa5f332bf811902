//! This instance's lease, and the calls of instances that died.
//!
//! A call's row is written when it starts, `in_flight`, naming the instance
//! that runs it (`call::record`). Each instance has an id of its own,
//! `inst-…`, new at every start, and holds a lease on it: a key in the bus
//! bucket `llm-proxy-instances` that expires `[recording] lease_secs` after
//! its last renewal, renewed three times as often. Once at start-up, before
//! serving, and then every `lease_secs`, an instance looks for calls in
//! flight of other instances and closes those whose instance holds no
//! lease: the events of the call that the bus's trace stream still keeps
//! and the database lacks (the dead instance published them but never
//! wrote them) are written, the call is marked `interrupted` with its
//! response rebuilt from its deltas, and an `llm.error` event tells its
//! subscribers. A call whose instance holds its lease is never touched.
//!
//! On NATS, a dead instance's calls are closed by another instance once its
//! lease has expired, or by the next instance to start after that. In
//! process (no bus) the leases live and die with the process: a restart
//! finds no lease but its own and closes what the previous run left in
//! flight.
//!
//! What a crash loses. On NATS: nothing of a call whose row was written
//! (its events come back from the stream); a call that started within the
//! last batch window before the crash has no row. In process: the records
//! the recorder had not written yet, at most `linger_ms` and one batch. An
//! instance cut off from the bus for longer than its lease may see its
//! calls closed by another one; when such a call ends after all, its real
//! end replaces `interrupted`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use confab_kit::bus::{Bus, BusError};
use confab_kit::db::Db;
use confab_kit::lease::{self, InstanceLease};
use confab_protocol::trace::TraceKind;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::call::{Assembly, recorded_response};
use crate::store::llm_calls::{self, Interruption, LlmCall};
use crate::store::{self, Batch, trace_events};
use crate::trace::hub::{EventContext, TraceHub};

/// The bucket of the instances' leases.
pub const LEASES: &str = "llm-proxy-instances";

/// The error of an interrupted call.
pub const INTERRUPTED: &str =
    "the llm-proxy-service instance running the call stopped before it ended";

/// This instance: its id and its lease.
pub struct Instance {
    pub lease: Arc<InstanceLease>,
}

/// The tasks that renew the lease and close dead instances' calls; see
/// [`Instance::keep`].
pub struct Keeping {
    tasks: Vec<JoinHandle<()>>,
}

impl Instance {
    /// A new instance holding its lease, `lease` long.
    pub async fn start(bus: &Bus, lease: Duration) -> Result<Self, BusError> {
        let leases = bus.bucket(LEASES, lease).await?;
        let lease = InstanceLease::start(leases, "inst", lease).await?;
        Ok(Self {
            lease: Arc::new(lease),
        })
    }

    pub fn id(&self) -> &str {
        self.lease.id()
    }

    /// Renews the lease (three times per lease) and closes the calls of
    /// dead instances (once per lease) until stopped.
    pub fn keep(self: &Arc<Self>, db: Db, hub: Arc<TraceHub>) -> Keeping {
        let renewing = self.lease.keep();
        let sweeping = {
            let instance = Arc::clone(self);
            tokio::spawn(async move {
                let mut every = lease::every(instance.lease.lease());
                loop {
                    every.tick().await;
                    if let Err(error) = instance.close_dead_calls(&db, &hub).await {
                        tracing::warn!(%error, "closing the calls of dead instances failed");
                    }
                }
            })
        };
        Keeping {
            tasks: vec![renewing, sweeping],
        }
    }

    /// Gives the lease up (after a clean stop: no call is left in flight).
    pub async fn release(&self) {
        self.lease.release().await;
    }

    /// Closes the calls in flight of every other instance that holds no
    /// lease; how many it closed.
    pub async fn close_dead_calls(&self, db: &Db, hub: &TraceHub) -> anyhow::Result<usize> {
        let mut closed = 0;
        for instance in llm_calls::instances_in_flight(db, self.id()).await? {
            if self.lease.alive(&instance).await? {
                continue;
            }
            let mut of_instance = 0;
            for call in llm_calls::in_flight(db, &instance).await? {
                if close(db, hub, &call).await? {
                    of_instance += 1;
                }
            }
            tracing::info!(%instance, closed = of_instance, "closed the calls of an instance that stopped");
            closed += of_instance;
        }
        Ok(closed)
    }
}

impl Keeping {
    pub fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for Keeping {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Marks `call` interrupted with what it had streamed, unless someone else
/// just did; whether this did.
async fn close(db: &Db, hub: &TraceHub, call: &LlmCall) -> anyhow::Result<bool> {
    let context = EventContext {
        call_id: call.id.clone(),
        agent_id: call.agent_id.clone(),
        user_id: call.user_id.clone(),
        conversation_id: call.conversation_id.clone(),
    };
    let mut events = trace_events::of_call(db, &call.id).await?;
    // The call's first event (its request) was queued before its row, so
    // it is stored; from there, the stream may still keep events the dead
    // instance published and never wrote.
    if let Some(first) = events.first().map(|event| event.seq) {
        let stored: HashSet<i64> = events.iter().map(|event| event.seq).collect();
        let unwritten: Vec<_> = hub
            .kept_events(&context, first)
            .await?
            .into_iter()
            .filter(|event| !stored.contains(&event.seq))
            .collect();
        if !unwritten.is_empty() {
            let batch = Batch {
                trace_events: unwritten.clone(),
                ..Batch::default()
            };
            store::write_batch(db, Arc::new(batch)).await?;
            events.extend(unwritten);
            events.sort_by_key(|event| event.seq);
        }
    }
    let mut streamed = Assembly::default();
    let mut first_delta = None;
    let mut last_event = None;
    for event in &events {
        if event.kind == TraceKind::Delta.as_str() {
            let delta: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
            streamed.add_traced(&delta);
            first_delta.get_or_insert(event.created_at);
        }
        last_event = Some(event.created_at);
    }
    let tool_calls: Vec<_> = streamed.tool_calls.into_values().collect();
    let response = recorded_response(&streamed.content, &tool_calls, None, None);
    let since_start = |at: NaiveDateTime| (at - call.created_at).num_milliseconds().max(0);
    let interruption = Interruption {
        response: response.to_string(),
        error: INTERRUPTED.to_owned(),
        latency_ms: last_event.map_or(0, since_start),
        first_chunk_ms: first_delta.map(since_start),
    };
    if !llm_calls::interrupt(db, &call.id, &interruption).await? {
        return Ok(false);
    }
    metrics::counter!("llm_proxy_calls_interrupted_total").increment(1);
    hub.publish(
        &context,
        TraceKind::Error,
        json!({"error": INTERRUPTED, "partial": response}),
    )
    .await;
    Ok(true)
}
