//! A bucket entry held for as long as its holder lives (DESIGN §15).
//!
//! [`Lease::take`] makes the entry with a create only one holder can win,
//! then writes it again every `every` (a third of the bucket's TTL, say) so
//! that it never expires while held; [`Lease::release`] deletes it. A holder
//! that dies (`kill -9`, a machine gone) stops writing it and the entry
//! expires with the bucket's TTL: what it stood for is free again without
//! anyone cleaning up, and no instance needs to trust another's clock (the
//! TTL is the bus's).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bus::{Bucket, BusError};

/// A key held in a bucket until released (or dropped).
pub struct Lease {
    /// `None` once let go.
    held: Option<Held>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = self.held.as_ref().map(|held| held.key.as_str());
        f.debug_struct("Lease").field("key", &key).finish()
    }
}

struct Held {
    bucket: Bucket,
    key: String,
    /// What the entry holds: how the holder tells its entry from another's.
    value: Bytes,
    /// The last revision written, by the renewer or the create.
    revision: Arc<AtomicU64>,
    stop: CancellationToken,
    renewer: JoinHandle<()>,
}

impl Lease {
    /// Takes `key` in `bucket` with `value`, and holds it: written again
    /// every `every` until released. `value` must be this holder's own (an
    /// id of it, say): after a write whose answer was lost, it is how the
    /// holder knows the entry is still its own. `None` while a live entry
    /// holds the key, whoever wrote it.
    pub async fn take(
        bucket: &Bucket,
        key: &str,
        value: Bytes,
        every: Duration,
    ) -> Result<Option<Self>, BusError> {
        let revision = match bucket.create(key, value.clone()).await {
            Ok(revision) => revision,
            Err(BusError::Conflict { .. }) => return Ok(None),
            Err(err) => return Err(err),
        };
        let revision = Arc::new(AtomicU64::new(revision));
        let stop = CancellationToken::new();
        let renewer = tokio::spawn(renew(
            bucket.clone(),
            key.to_owned(),
            value.clone(),
            revision.clone(),
            every,
            stop.clone(),
        ));
        Ok(Some(Self {
            held: Some(Held {
                bucket: bucket.clone(),
                key: key.to_owned(),
                value,
                revision,
                stop,
                renewer,
            }),
        }))
    }

    /// Stops holding the key and deletes it (if it is still this holder's),
    /// before it returns. When the bus cannot be reached the entry lapses
    /// with the bucket's TTL instead.
    pub async fn release(mut self) {
        if let Some(held) = self.held.take() {
            held.release().await;
        }
    }
}

impl Drop for Lease {
    /// A lease dropped without [`Lease::release`] is let go in the
    /// background; with no runtime left to do it, it lapses with the TTL.
    fn drop(&mut self) {
        let Some(held) = self.held.take() else {
            return;
        };
        held.stop.cancel();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(held.release());
        }
    }
}

impl Held {
    /// Stops renewing (a renewal under way finishes first, so the revision
    /// is the last one written) and deletes the entry.
    async fn release(self) {
        self.stop.cancel();
        let _ = self.renewer.await;
        let mut revision = self.revision.load(Ordering::SeqCst);
        // A renewal whose answer was lost moved the revision on: read it
        // back, and delete the entry if it is still this holder's. Three
        // tries: each conflict but the first means someone else wrote it.
        for _ in 0..3 {
            match self.bucket.delete(&self.key, revision).await {
                Ok(()) => return,
                Err(BusError::Conflict { .. }) => match self.bucket.get(&self.key).await {
                    Ok(Some(entry)) if entry.value == self.value => revision = entry.revision,
                    _ => return,
                },
                Err(err) => {
                    tracing::warn!(error = %err, key = %self.key, "letting a lease go failed; it lapses with the bucket's TTL");
                    return;
                }
            }
        }
    }
}

/// Writes the entry again every `every` until `stop`; gives up when it was
/// lost (expired while the bus was out of reach, and taken by another).
async fn renew(
    bucket: Bucket,
    key: String,
    value: Bytes,
    revision: Arc<AtomicU64>,
    every: Duration,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let current = revision.load(Ordering::SeqCst);
        match bucket.update(&key, value.clone(), current).await {
            Ok(next) => revision.store(next, Ordering::SeqCst),
            Err(BusError::Conflict { .. }) => {
                tracing::error!(%key, "a lease was lost: it expired before it could be renewed");
                return;
            }
            Err(err) => {
                tracing::warn!(error = %err, %key, "renewing a lease failed; trying again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::tests::on_both;

    const EVERY: Duration = Duration::from_millis(300);

    /// Waits until `key` has no live entry; fails after `within`.
    async fn until_gone(bucket: &Bucket, key: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while bucket.get(key).await.unwrap().is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{key} is still held"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn a_held_key_is_not_taken_twice_and_is_free_once_released() {
        on_both(|bus| async move {
            let bucket = bus.bucket("leases", Duration::from_secs(60)).await.unwrap();
            let held = Lease::take(&bucket, "k", Bytes::from("a"), EVERY)
                .await
                .unwrap()
                .unwrap();
            let second = Lease::take(&bucket, "k", Bytes::from("b"), EVERY).await;
            assert!(matches!(second, Ok(None)), "{second:?}");
            held.release().await;
            assert_eq!(bucket.get("k").await.unwrap(), None);
            let again = Lease::take(&bucket, "k", Bytes::from("b"), EVERY).await;
            assert!(matches!(again, Ok(Some(_))), "{again:?}");
            // Dropped, it is let go in the background (long before the TTL).
            drop(again);
            until_gone(&bucket, "k", Duration::from_secs(10)).await;
        })
        .await;
    }

    #[tokio::test]
    async fn a_held_key_outlives_the_ttl_of_its_bucket() {
        on_both(|bus| async move {
            let bucket = bus.bucket("leases", Duration::from_secs(1)).await.unwrap();
            let held = Lease::take(&bucket, "k", Bytes::from("a"), EVERY)
                .await
                .unwrap()
                .unwrap();
            // Three TTLs: an entry not written again would be gone.
            tokio::time::sleep(Duration::from_secs(3)).await;
            let entry = bucket.get("k").await.unwrap().expect("still held");
            assert_eq!(entry.value.as_ref(), b"a");
            held.release().await;
        })
        .await;
    }

    // Multi-threaded: the NATS client's connection runs on this runtime
    // while the dying holder's runtime uses it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_key_of_a_holder_that_stopped_without_letting_go_expires() {
        on_both(|bus| async move {
            let bucket = bus.bucket("leases", Duration::from_secs(1)).await.unwrap();
            // A holder that dies: its runtime goes, and its renewer with it,
            // before it could delete anything.
            let dying = bucket.clone();
            tokio::task::spawn_blocking(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let held = runtime.block_on(async {
                    let taken = Lease::take(&dying, "k", Bytes::from("a"), EVERY).await;
                    taken.unwrap().unwrap()
                });
                drop(runtime);
                // A killed process runs no destructors either.
                std::mem::forget(held);
            })
            .await
            .unwrap();
            assert!(bucket.get("k").await.unwrap().is_some());
            until_gone(&bucket, "k", Duration::from_secs(15)).await;
            let taken = Lease::take(&bucket, "k", Bytes::from("b"), EVERY).await;
            assert!(matches!(taken, Ok(Some(_))), "{taken:?}");
        })
        .await;
    }
}
