//! When a key set may be read again: coalesced and spaced out.
//!
//! A token with an unknown `kid` usually means the keys were rotated, so the
//! holder of the key set (a service's JWKS cache, the gateway's key ring)
//! reads them again. Two things must hold for that to be both correct and
//! safe: every request that arrived before a re-read is served by that one
//! re-read (a burst of new-key tokens costs one fetch, and none of them is
//! refused because another request fetched "just before" the key existed),
//! and re-reads are at least [`RefetchGate::min_interval`] apart, so a flood
//! of forged `kid`s costs the key source one read per interval, not one per
//! request.

use std::future::Future;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

pub struct RefetchGate {
    /// When the newest re-read started.
    last_started: Mutex<Option<Instant>>,
    min_interval: Duration,
}

impl RefetchGate {
    pub fn new(min_interval: Duration) -> Self {
        Self {
            last_started: Mutex::new(None),
            min_interval,
        }
    }

    pub fn min_interval(&self) -> Duration {
        self.min_interval
    }

    /// Runs `fetch` for a caller that found the key set wanting at `since`,
    /// unless a re-read started after `since` already (its result is the
    /// caller's answer). Waits, rather than refuses, when the previous
    /// re-read is less than the minimum interval ago; callers queue on one
    /// lock, so at most one re-read runs at a time.
    pub async fn refetch<F, Fut>(&self, since: Instant, fetch: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut last = self.last_started.lock().await;
        if last.is_some_and(|started| started >= since) {
            return;
        }
        if let Some(started) = *last {
            let next = started + self.min_interval;
            if next > Instant::now() {
                tokio::time::sleep_until(next).await;
            }
        }
        *last = Some(Instant::now());
        fetch().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch() {
        let gate = Arc::new(RefetchGate::new(Duration::from_secs(1)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let since = Instant::now();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (gate, fetches) = (gate.clone(), fetches.clone());
                tokio::spawn(async move {
                    gate.refetch(since, || async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    })
                    .await;
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_caller_waits_for_the_interval_then_fetches() {
        let gate = RefetchGate::new(Duration::from_secs(1));
        let fetches = AtomicUsize::new(0);
        let count = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
        };
        gate.refetch(Instant::now(), count).await;
        let first = Instant::now();
        tokio::time::advance(Duration::from_millis(10)).await;
        gate.refetch(Instant::now(), count).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        assert!(Instant::now() >= first + Duration::from_secs(1));
    }
}
