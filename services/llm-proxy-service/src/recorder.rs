//! Writing calls, tool calls and trace events off the request path.
//!
//! Handlers hand rows to a bounded queue; one writer task drains it in
//! batches of up to `batch_size` rows, each batch one transaction. When the
//! queue is full, handing a row over waits: backpressure slows the callers
//! down, nothing is dropped. A batch that fails to write is retried with
//! backoff until it succeeds. When every handle is gone (the server stopped),
//! the writer empties the queue and ends; [`Recorder::flush`] waits for that.

use std::sync::Arc;
use std::time::Duration;

use confab_kit::db::Db;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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
}

/// One thing to record.
#[derive(Debug)]
pub enum Record {
    /// A finished call with the tool calls it asked for.
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
    /// Starts the writer task.
    pub fn start(db: Db, settings: &RecordingSettings) -> (Recorder, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(settings.queue_capacity.max(1));
        let writer = tokio::spawn(write_loop(db, rx, settings.batch_size.max(1)));
        (Recorder { tx }, writer)
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

async fn write_loop(db: Db, mut rx: mpsc::Receiver<Record>, batch_size: usize) {
    let mut records = Vec::with_capacity(batch_size);
    loop {
        records.clear();
        if rx.recv_many(&mut records, batch_size).await == 0 {
            break;
        }
        let mut batch = Batch::default();
        for record in records.drain(..) {
            match record {
                Record::Call(call, tools) => {
                    batch.calls.push(call);
                    batch.tool_calls.extend(tools);
                }
                Record::Trace(event) => batch.trace_events.push(event),
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
