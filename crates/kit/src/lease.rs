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

/// An instance's lease on its own name, in a bucket its peers share: how
/// they tell it is alive (DESIGN §15). A process takes a fresh name at
/// every start, writes its entry at once and then every third of the lease
/// ([`InstanceLease::keep`]); when it dies the entry expires with the
/// bucket's TTL (the lease) and [`InstanceLease::alive`] answers `false`
/// for it on every instance. One write per instance per period, however
/// much work the instance holds: what it owns (a turn, a call) names the
/// instance, and is another's to take over only once the instance is dead.
///
/// An instance cut off from the bus for longer than its lease is dead to
/// the others for a while: it takes its name again when it can, and says so
/// through [`InstanceLease::lapses`], so that it can check what it still
/// owns.
pub struct InstanceLease {
    id: String,
    bucket: Bucket,
    lease: Duration,
    /// How many times the lease lapsed and was taken again.
    lapses: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for InstanceLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceLease")
            .field("id", &self.id)
            .field("lease", &self.lease)
            .finish()
    }
}

impl InstanceLease {
    /// A new instance named `<prefix>-…`, holding its lease in `bucket`
    /// (whose TTL must be `lease`).
    pub async fn start(bucket: Bucket, prefix: &str, lease: Duration) -> Result<Self, BusError> {
        let id = crate::ids::new_id(prefix);
        bucket.create(&id, Bytes::from(id.clone())).await?;
        tracing::info!(instance = %id, lease_secs = lease.as_secs_f64(), "holding the instance lease");
        Ok(Self {
            id,
            bucket,
            lease,
            lapses: tokio::sync::watch::Sender::new(0),
        })
    }

    /// This instance's name.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How long the entry lives without a renewal.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Renews the lease every third of it until the task is aborted.
    pub fn keep(self: &Arc<Self>) -> JoinHandle<()> {
        let instance = Arc::clone(self);
        tokio::spawn(async move {
            let period = instance.lease / 3;
            let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(error) = instance.renew().await {
                    tracing::warn!(%error, instance = %instance.id, "renewing the instance lease failed");
                }
            }
        })
    }

    /// Writes the entry again: over its live entry, or anew if it expired
    /// (the bus was out of reach longer than the lease).
    pub async fn renew(&self) -> Result<(), BusError> {
        let value = Bytes::from(self.id.clone());
        match self.bucket.get(&self.id).await? {
            Some(entry) => match self.bucket.update(&self.id, value, entry.revision).await {
                // Only this instance writes its name: a write whose answer
                // was lost moved the revision on; the next renewal reads it.
                Ok(_) | Err(BusError::Conflict { .. }) => Ok(()),
                Err(error) => Err(error),
            },
            None => {
                tracing::error!(instance = %self.id, "the instance lease had lapsed: other instances may have taken over what this one ran; taking it again");
                self.bucket.create(&self.id, value).await?;
                self.lapses.send_modify(|lapses| *lapses += 1);
                Ok(())
            }
        }
    }

    /// Changes each time the lease lapsed and was taken again.
    pub fn lapses(&self) -> tokio::sync::watch::Receiver<u64> {
        self.lapses.subscribe()
    }

    /// Whether the instance `id` holds its lease now.
    pub async fn alive(&self, id: &str) -> Result<bool, BusError> {
        match self.bucket.get(id).await {
            Ok(entry) => Ok(entry.is_some()),
            // No instance is named so; none can hold its lease.
            Err(BusError::InvalidName(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Gives the lease up (after a clean stop, nothing left to take over).
    pub async fn release(&self) {
        let released = match self.bucket.get(&self.id).await {
            Ok(Some(entry)) => self.bucket.delete(&self.id, entry.revision).await,
            Ok(None) => Ok(()),
            Err(error) => Err(error),
        };
        if let Err(error) = released {
            tracing::warn!(%error, instance = %self.id, "releasing the instance lease failed");
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
    async fn an_instance_is_alive_while_it_keeps_its_lease_and_after_a_lapse_takes_it_again() {
        on_both(|bus| async move {
            let lease = Duration::from_secs(1);
            let bucket = bus.bucket("instances", lease).await.unwrap();
            let a = Arc::new(
                InstanceLease::start(bucket.clone(), "inst", lease)
                    .await
                    .unwrap(),
            );
            let b = InstanceLease::start(bucket.clone(), "inst", lease)
                .await
                .unwrap();
            assert_ne!(a.id(), b.id());
            let keeping = a.keep();
            // Three leases: an entry not renewed would be gone.
            tokio::time::sleep(3 * lease).await;
            assert!(b.alive(a.id()).await.unwrap());
            assert!(!b.alive("inst-never-was").await.unwrap());
            assert!(!b.alive("not a name").await.unwrap());

            // Cut off for longer than the lease: dead to the others, then
            // alive again at the next renewal, which counts the lapse.
            keeping.abort();
            let mut lapses = a.lapses();
            until_gone(&bucket, a.id(), Duration::from_secs(15)).await;
            assert!(!b.alive(a.id()).await.unwrap());
            a.renew().await.unwrap();
            assert!(b.alive(a.id()).await.unwrap());
            assert!(lapses.has_changed().unwrap());
            assert_eq!(*lapses.borrow_and_update(), 1);

            a.release().await;
            assert!(!b.alive(a.id()).await.unwrap());
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
