//! What several instances hold on the bus, and for how long (DESIGN §15).
//!
//! Each instance holds a lease on its own name ([`InstanceLease`]): an
//! entry in a bucket whose TTL is the lease, written again every third of
//! it. When the instance dies (`kill -9`, a machine gone) it stops writing
//! and the entry expires: every other instance sees it dead, without anyone
//! cleaning up and without trusting another's clock (the TTL is the bus's).
//!
//! What an instance holds (a turn's claim, a user's place for a turn in
//! flight) is an entry in a bucket without TTL that names the instance
//! ([`InstanceLease::take`] gives a [`Held`]): one write to take it, one to
//! let it go, none while it is held, however long. An entry whose instance
//! is dead is free: the next one to take the key writes over it, at its
//! revision, so one taker wins.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;

use crate::bus::{Bucket, BusError};

/// A key held in a bucket by this instance ([`InstanceLease::take`]) until
/// released or dropped.
pub struct Held {
    /// `None` once let go.
    key: Option<HeldKey>,
}

struct HeldKey {
    bucket: Bucket,
    key: String,
    value: Bytes,
    revision: u64,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = self.key.as_ref().map(|held| held.key.as_str());
        f.debug_struct("Held").field("key", &key).finish()
    }
}

impl Held {
    /// Deletes the entry (if it is still this holder's) before it returns;
    /// when the bus cannot be reached, once it can again ([`let_go`]).
    pub async fn release(mut self) {
        if let Some(held) = self.key.take() {
            let_go(&held.bucket, &held.key, &held.value, held.revision).await;
        }
    }
}

impl Drop for Held {
    /// Let go in the background when dropped without [`Held::release`].
    fn drop(&mut self) {
        let Some(held) = self.key.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let_go(&held.bucket, &held.key, &held.value, held.revision).await;
            });
        }
    }
}

/// Deletes `key` of `bucket` if its entry is still `value`, last written at
/// `revision` as far as the holder knows: a write whose answer was lost may
/// have moved the revision on, so on a conflict the entry is read back.
/// When the bus cannot be reached, it goes on trying in the background
/// (backing off up to 5 s): an entry of a live instance is nobody else's to
/// delete.
pub async fn let_go(bucket: &Bucket, key: &str, value: &Bytes, revision: u64) {
    if let Err(err) = try_to_let_go(bucket, key, value, revision).await {
        tracing::warn!(error = %err, key, "letting a key go failed; trying again in the background");
        let (bucket, key, value) = (bucket.clone(), key.to_owned(), value.clone());
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                tokio::time::sleep(backoff).await;
                if try_to_let_go(&bucket, &key, &value, revision).await.is_ok() {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        });
    }
}

/// One attempt of [`let_go`]: `Ok` once the entry is gone or another's.
async fn try_to_let_go(
    bucket: &Bucket,
    key: &str,
    value: &Bytes,
    mut revision: u64,
) -> Result<(), BusError> {
    // Three tries: each conflict but the first means someone else wrote it.
    for _ in 0..3 {
        match bucket.delete(key, revision).await {
            Ok(()) => return Ok(()),
            Err(BusError::Conflict { .. }) => match bucket.get(key).await? {
                Some(entry) if entry.value == *value => revision = entry.revision,
                _ => return Ok(()),
            },
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Ticks every `period`, the first time one period from now; a tick
/// missed (a slow renewal, a busy runtime) delays the next ones.
pub fn every(period: Duration) -> tokio::time::Interval {
    let start = tokio::time::Instant::now() + period;
    let mut every = tokio::time::interval_at(start, period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every
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
            let mut every = every(instance.lease / 3);
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

    /// Whether the instance `id` holds its lease now (this one does).
    pub async fn alive(&self, id: &str) -> Result<bool, BusError> {
        if id == self.id {
            return Ok(true);
        }
        match self.bucket.get(id).await {
            Ok(entry) => Ok(entry.is_some()),
            // No instance is named so; none can hold its lease.
            Err(BusError::InvalidName(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Takes `key` of `bucket` (a bucket without TTL) for this instance,
    /// with a `value` of its own (`what`, after this instance's name): made
    /// anew, or written over the entry of an instance that is dead (the
    /// name its entry starts with). `None` while a live instance holds it.
    pub async fn take(
        &self,
        bucket: &Bucket,
        key: &str,
        what: &str,
    ) -> Result<Option<Held>, BusError> {
        let value = Bytes::from(format!("{} {what}", self.id));
        let revision = match bucket.create(key, value.clone()).await {
            Ok(revision) => revision,
            Err(BusError::Conflict { .. }) => {
                let Some(entry) = bucket.get(key).await? else {
                    // Let go meanwhile: the next try takes it.
                    return Ok(None);
                };
                let holder = entry.value.split(|b| *b == b' ').next().unwrap_or_default();
                if self.alive(&String::from_utf8_lossy(holder)).await? {
                    return Ok(None);
                }
                match bucket.update(key, value.clone(), entry.revision).await {
                    Ok(revision) => revision,
                    Err(BusError::Conflict { .. }) => return Ok(None),
                    Err(err) => return Err(err),
                }
            }
            Err(err) => return Err(err),
        };
        Ok(Some(Held {
            key: Some(HeldKey {
                bucket: bucket.clone(),
                key: key.to_owned(),
                value,
                revision,
            }),
        }))
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
    use crate::bus::Bus;
    use crate::bus::tests::on_both;

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

    async fn instance(bus: &Bus, lease: Duration) -> Arc<InstanceLease> {
        let bucket = bus.bucket("instances", lease).await.unwrap();
        Arc::new(InstanceLease::start(bucket, "inst", lease).await.unwrap())
    }

    #[tokio::test]
    async fn an_instance_is_alive_while_it_keeps_its_lease_and_after_a_lapse_takes_it_again() {
        on_both(|bus| async move {
            let lease = Duration::from_secs(1);
            let a = instance(&bus, lease).await;
            let b = instance(&bus, lease).await;
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
            until_gone(&a.bucket, a.id(), Duration::from_secs(15)).await;
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
    async fn a_held_key_is_not_taken_twice_and_is_free_once_released() {
        on_both(|bus| async move {
            let a = instance(&bus, Duration::from_secs(60)).await;
            let b = instance(&bus, Duration::from_secs(60)).await;
            let keys = bus.bucket("held", Duration::ZERO).await.unwrap();
            let held = a.take(&keys, "k", "first").await.unwrap().unwrap();
            assert!(a.take(&keys, "k", "again").await.unwrap().is_none());
            assert!(b.take(&keys, "k", "second").await.unwrap().is_none());
            held.release().await;
            assert_eq!(keys.get("k").await.unwrap(), None);
            let again = b.take(&keys, "k", "second").await.unwrap().unwrap();
            // Dropped, it is let go in the background.
            drop(again);
            until_gone(&keys, "k", Duration::from_secs(10)).await;
        })
        .await;
    }

    #[tokio::test]
    async fn the_keys_of_an_instance_that_died_are_taken_over_once() {
        on_both(|bus| async move {
            let lease = Duration::from_secs(1);
            let dying = instance(&bus, lease).await;
            let a = instance(&bus, lease).await;
            let b = instance(&bus, lease).await;
            let _keeping = (a.keep(), b.keep());
            let keys = bus.bucket("held", Duration::ZERO).await.unwrap();
            let held = dying.take(&keys, "k", "dying").await.unwrap().unwrap();
            // A killed process lets nothing go and renews nothing.
            std::mem::forget(held);
            assert!(
                a.take(&keys, "k", "a").await.unwrap().is_none(),
                "its instance lives"
            );
            until_gone(&dying.bucket, dying.id(), Duration::from_secs(15)).await;
            let (taken_a, taken_b) = tokio::join!(a.take(&keys, "k", "a"), b.take(&keys, "k", "b"));
            let taken = [taken_a.unwrap(), taken_b.unwrap()];
            assert_eq!(taken.iter().filter(|t| t.is_some()).count(), 1, "{taken:?}");
            let entry = keys.get("k").await.unwrap().unwrap();
            assert!(!entry.value.starts_with(dying.id().as_bytes()));
        })
        .await;
    }

    // Its own NATS server, to stop and start again: where none can be run,
    // skipped. (Built with the `testing` feature: in the workspace's tests.)
    #[cfg(feature = "testing")]
    #[tokio::test]
    async fn a_key_let_go_while_the_bus_is_away_is_deleted_once_it_is_back() {
        use crate::testing::nats::NatsServer;
        let Some(mut nats) = NatsServer::start().await else {
            eprintln!("no nats-server to stop and start: skipped");
            return;
        };
        let settings = crate::bus::BusSettings {
            url: Some(nats.url()),
            namespace: "confab".to_owned(),
            timeout_secs: 1,
        };
        let bus = Bus::connect(&settings).await.unwrap();
        let a = instance(&bus, Duration::from_secs(60)).await;
        let keys = bus.bucket("held", Duration::ZERO).await.unwrap();
        let held = a.take(&keys, "k", "turn").await.unwrap().unwrap();
        nats.stop();
        held.release().await;
        assert!(nats.resume().await, "nats-server starts again");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !matches!(keys.get("k").await, Ok(None)) {
            assert!(tokio::time::Instant::now() < deadline, "never let go");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
