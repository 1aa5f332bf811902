//! Writing calls, tool calls and trace events off the request path.
//!
//! Handlers hand rows to a bounded queue; one writer task drains it in
//! batches of up to `batch_size` rows, each batch one transaction. When the
//! queue is full, handing a row over waits: backpressure slows the callers
//! down, nothing is dropped. A batch that fails to write is retried with
//! backoff until it succeeds. When every handle is gone (the server stopped),
//! the writer empties the queue and ends; the handle [`Recorder::start`]
//! returns waits for that.
//!
//! A call is recorded twice: its row when it starts (in flight) and again
//! when it ends, written over the first (in one row when both fall in one
//! batch). What a process killed outright loses is what was queued and not
//! yet written: at most `linger_ms` and a batch (`crate::instances`).
//!
//! The writer runs on a thread of its own at the lowest scheduling priority
//! (SCHED_IDLE on Linux): writing is background work and must not take CPU
//! from requests. It cannot starve: if it fell behind, the full queue would
//! make the requests wait, and the CPU they leave idle is its.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use confab_kit::db::Db;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::store::llm_calls::LlmCall;
use crate::store::tool_calls::ToolCallRow;
use crate::store::trace_events::TraceEventRow;
use crate::store::{self, Batch};

#[derive(Debug, Clone, Deserialize)]
pub struct RecordingSettings {
    /// Rows waiting to be written before callers are made to wait.
    pub queue_capacity: usize,
    /// Rows written per transaction at most.
    pub batch_size: usize,
    /// How long the writer lets a batch fill before writing it: fewer,
    /// larger transactions cost the database (and the CPU the proxy shares
    /// with it) much less than one per record.
    #[serde(default)]
    pub linger_ms: u64,
    /// Seconds an instance's lease lasts after its last renewal: how long
    /// after an instance dies its calls in flight are marked `interrupted`
    /// by another one (`crate::instances`).
    pub lease_secs: u64,
}

/// One thing to record.
#[derive(Debug)]
pub enum Record {
    /// A call that started: its row, in flight, so that it exists even if
    /// this instance dies before the call ends.
    Start(LlmCall),
    /// A finished call with the tool calls it asked for: completes the row
    /// of its start.
    Call(LlmCall, Vec<ToolCallRow>),
    Trace(TraceEventRow),
}

/// First and longest wait between retries of a failed batch.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// The sending side of the queue; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Record>,
}

/// A reserved place in the queue: once held, sending cannot wait.
pub type Slot<'a> = mpsc::Permit<'a, Record>;

impl Recorder {
    /// Starts the writer on its own thread; the returned future ends when
    /// the writer has written everything and stopped.
    pub fn start(
        db: Db,
        settings: &RecordingSettings,
    ) -> std::io::Result<(Recorder, impl Future<Output = ()> + Send + 'static)> {
        let (tx, rx) = mpsc::channel(settings.queue_capacity.max(1));
        let linger = Duration::from_millis(settings.linger_ms);
        let batch_size = settings.batch_size.max(1);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("confab-recorder")
            .on_thread_start(background_priority)
            .build()?;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("confab-recorder".into())
            .spawn(move || {
                background_priority();
                runtime.block_on(write_loop(db, rx, batch_size, linger));
                let _ = done_tx.send(());
            })?;
        let stopped = async move {
            let _ = done_rx.await;
        };
        Ok((Recorder { tx }, stopped))
    }

    /// Queues a record, waiting while the queue is full.
    pub async fn record(&self, record: Record) {
        if self.tx.send(record).await.is_err() {
            tracing::error!("the recorder has stopped; a record was lost");
        }
        self.report_depth();
    }

    /// Reserves a place in the queue, waiting while it is full.
    pub async fn reserve(&self) -> Option<Slot<'_>> {
        let slot = self.tx.reserve().await.ok();
        if slot.is_none() {
            tracing::error!("the recorder has stopped; a record was lost");
        }
        slot
    }

    pub fn report_depth(&self) {
        let depth = self.tx.max_capacity() - self.tx.capacity();
        metrics::gauge!("llm_proxy_record_queue_depth").set(depth as f64);
    }
}

/// Lowers the calling thread to background priority, where the OS has one.
fn background_priority() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
            thread_native_id,
        };
        let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        if let Err(err) = set_thread_priority_and_policy(
            thread_native_id(),
            thread_priority::ThreadPriority::Min,
            policy,
        ) {
            tracing::debug!(error = ?err, "could not lower the recorder's priority");
        }
    }
}

async fn write_loop(db: Db, mut rx: mpsc::Receiver<Record>, batch_size: usize, linger: Duration) {
    let mut records = Vec::with_capacity(batch_size);
    loop {
        records.clear();
        if rx.recv_many(&mut records, batch_size).await == 0 {
            break;
        }
        if records.len() < batch_size && !linger.is_zero() {
            tokio::time::sleep(linger).await;
            while records.len() < batch_size {
                match rx.try_recv() {
                    Ok(record) => records.push(record),
                    Err(_) => break,
                }
            }
        }
        let mut batch = Batch::default();
        // A call's end in the same batch as its start replaces it: one row.
        let mut call_at = HashMap::new();
        for record in records.drain(..) {
            let (call, tools) = match record {
                Record::Trace(event) => {
                    batch.trace_events.push(event);
                    continue;
                }
                Record::Start(call) => (call, Vec::new()),
                Record::Call(call, tools) => (call, tools),
            };
            batch.tool_calls.extend(tools);
            match call_at.get(&call.id) {
                Some(&at) => batch.calls[at] = call,
                None => {
                    call_at.insert(call.id.clone(), batch.calls.len());
                    batch.calls.push(call);
                }
            }
        }
        write_with_retry(&db, Arc::new(batch)).await;
        metrics::gauge!("llm_proxy_record_queue_depth").set(rx.len() as f64);
    }
    tracing::debug!("recorder flushed and stopped");
}

async fn write_with_retry(db: &Db, batch: Arc<Batch>) {
    let mut delay = RETRY_FIRST;
    loop {
        match store::write_batch(db, batch.clone()).await {
            Ok(()) => {
                metrics::counter!("llm_proxy_records_written_total").increment(batch.rows() as u64);
                return;
            }
            Err(err) => {
                metrics::counter!("llm_proxy_record_write_failures_total").increment(1);
                tracing::warn!(error = %err, rows = batch.rows(), retry_in_ms = delay.as_millis() as u64, "writing records failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RETRY_MAX);
            }
        }
    }
}
