//! The SSE frames of chunks that arrived together (one read from the
//! upstream) go to the client as one write: the same bytes, fewer wake-ups
//! and syscalls.

use actix_web::web::{Bytes, BytesMut};
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::mpsc;

use crate::providers::UpstreamError;

/// What comes next from the upstream.
pub(super) enum Next {
    Chunk(String),
    /// The upstream broke; what was queued before is still to be flushed.
    Broken(UpstreamError),
    /// A write failed: the client is gone.
    ClientGone,
    End,
}

/// An upstream stream read in runs of what arrived together, and the client
/// the queued frames of a run are written to.
pub(super) struct ArrivedTogether {
    upstream: BoxStream<'static, Result<String, UpstreamError>>,
    client: mpsc::Sender<Bytes>,
    pending: BytesMut,
}

impl ArrivedTogether {
    pub fn new(
        upstream: BoxStream<'static, Result<String, UpstreamError>>,
        client: mpsc::Sender<Bytes>,
    ) -> Self {
        Self {
            upstream,
            client,
            pending: BytesMut::new(),
        }
    }

    /// The next chunk: one that has already arrived, or else, once the
    /// frames queued so far are written, the next to arrive.
    pub async fn next(&mut self) -> Next {
        let item = match self.upstream.next().now_or_never() {
            Some(item) => item,
            None => {
                if !self.flush().await {
                    return Next::ClientGone;
                }
                self.upstream.next().await
            }
        };
        match item {
            Some(Ok(data)) => Next::Chunk(data),
            Some(Err(err)) => Next::Broken(err),
            None => Next::End,
        }
    }

    /// Queues a chunk's frame for the run's write.
    pub fn queue(&mut self, data: &str) {
        self.pending.extend_from_slice(b"data: ");
        self.pending.extend_from_slice(data.as_bytes());
        self.pending.extend_from_slice(b"\n\n");
    }

    /// Writes what is queued; false when the client is gone.
    pub async fn flush(&mut self) -> bool {
        self.pending.is_empty()
            || self
                .client
                .send(self.pending.split().freeze())
                .await
                .is_ok()
    }

    /// Writes the stream's last frame, after what is queued.
    pub async fn end_with(mut self, frame: Bytes) {
        if self.flush().await {
            let _ = self.client.send(frame).await;
        }
    }
}
