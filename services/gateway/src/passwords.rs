//! Password hashing with argon2id (the `argon2` crate's default: Argon2id
//! v19, m = 19 MiB, t = 2, p = 1, the OWASP baseline).
//!
//! Hashing is deliberately slow, so it runs on the blocking pool and never
//! stalls a worker; and each hash holds 19 MiB while it runs, so at most
//! `[limits] password_hashes` run at once (0: one per core). More wait for a
//! turn: a flood of logins queues instead of taking 19 MiB each, all at
//! once, from a blocking pool of up to 512 threads.
//!
//! `/metrics` shows `gateway_password_hashes_running`, `…_waiting` and
//! `…_running_peak` (the most that ever ran at once).

use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::Semaphore;

/// Runs password hashes, at most `limit` at a time.
pub struct Hasher {
    permits: Arc<Semaphore>,
    limit: usize,
    counts: Arc<Counts>,
}

impl Hasher {
    /// `configured` hashes at once; 0 means one per core.
    pub fn new(configured: usize) -> Self {
        let limit = match configured {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            n => n,
        };
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            counts: Arc::default(),
        }
    }

    /// How many hashes may run at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        self.run(move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
        })
        .await
        .context("password hashing task")
    }

    /// True when `password` matches the stored hash.
    pub async fn verify(&self, password: String, stored: String) -> anyhow::Result<bool> {
        self.run(move || {
            let parsed = PasswordHash::new(&stored)
                .map_err(|e| anyhow::anyhow!("stored hash is invalid: {e}"))?;
            Ok(Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await
        .context("password verification task")
    }

    /// A hash to verify against when the user does not exist, so a login for
    /// an unknown user takes as long as one with a wrong password.
    pub async fn dummy_hash(&self) -> anyhow::Result<String> {
        self.hash("confab-timing-equaliser".to_owned()).await
    }

    /// `work` on the blocking pool once a permit is free. The permit goes
    /// with the work: a caller that gives up (a client gone) frees its place
    /// in the queue, but not a permit whose hash is still running.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let waiting = Counted::new(&self.counts, Count::Waiting);
        // The semaphore is never closed.
        let permit = self.permits.clone().acquire_owned().await?;
        drop(waiting);
        let counts = self.counts.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _running = Counted::new(&counts, Count::Running);
            work()
        })
        .await?
    }
}

/// Hashes waiting and running, and the most that ran at once. Behind a
/// mutex so the gauges are set in the order the counts change (a hash takes
/// tens of milliseconds; the lock, nanoseconds).
#[derive(Default)]
struct Counts(Mutex<Tally>);

#[derive(Default)]
struct Tally {
    waiting: usize,
    running: usize,
    peak: usize,
}

#[derive(Clone, Copy)]
enum Count {
    Waiting,
    Running,
}

impl Counts {
    fn add(&self, which: Count, up: bool) {
        let mut tally = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = match which {
            Count::Waiting => &mut tally.waiting,
            Count::Running => &mut tally.running,
        };
        *count = if up {
            *count + 1
        } else {
            count.saturating_sub(1)
        };
        tally.peak = tally.peak.max(tally.running);
        metrics::gauge!("gateway_password_hashes_waiting").set(tally.waiting as f64);
        metrics::gauge!("gateway_password_hashes_running").set(tally.running as f64);
        metrics::gauge!("gateway_password_hashes_running_peak").set(tally.peak as f64);
    }
}

/// One hash counted as waiting or running while it lives.
struct Counted<'a>(&'a Counts, Count);

impl<'a> Counted<'a> {
    fn new(counts: &'a Counts, which: Count) -> Self {
        counts.add(which, true);
        Self(counts, which)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.add(self.1, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = Hasher::new(1);
        let stored = hasher.hash("correct horse".into()).await.unwrap();
        assert!(
            hasher
                .verify("correct horse".into(), stored.clone())
                .await
                .unwrap()
        );
        assert!(!hasher.verify("wrong horse".into(), stored).await.unwrap());
    }

    #[test]
    fn zero_means_one_hash_per_core() {
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(Hasher::new(0).limit(), cores);
        assert_eq!(Hasher::new(3).limit(), 3);
    }
}
