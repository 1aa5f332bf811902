//! A rate per key per minute that holds across every instance of a service
//! (DESIGN §14, §15): the gateway's login, registration and chat POST
//! limits, chat-service's turn starts.
//!
//! The generic cell rate algorithm (GCRA), as the `governor` crate runs it
//! in one process, with its state in a bus bucket instead: per key, the
//! theoretical arrival time (TAT) of the next request, in nanoseconds since
//! the Unix epoch. A rate of `n` a minute lets `n` through at once and then
//! one every `60/n` seconds; a request is let through if the TAT is at most
//! `(n - 1) · 60/n` seconds ahead of now, and moves it on by `60/n`. A check
//! is one read, and one compare-and-set write when it passes; a write that
//! loses to another instance's reads again. `governor` itself keeps its
//! state behind a synchronous store in process memory, which cannot wait
//! for a bus.
//!
//! Each instance reads its own clock: clocks that disagree by `s` seconds
//! let through at most `s · n / 60` requests more, or fewer (NTP keeps it
//! far below one). A key untouched for a minute is back at its full burst,
//! so the bucket keeps an entry a minute after its last write and no
//! longer.

use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::bus::{Bucket, Bus, BusError, Entry};

/// The period of every rate here.
const MINUTE_NS: u64 = 60_000_000_000;

/// Writes a check may lose to other instances before it is refused. Each
/// lost write is another request let through meanwhile: a key this busy
/// has just let through as many as this, and one more refusal (with
/// `Retry-After: 1`) is the right answer to it.
const MAX_ATTEMPTS: usize = 8;

/// A rate shared through a bus bucket.
#[derive(Clone)]
pub struct Rate {
    bucket: Bucket,
    /// 60 s / the rate: how far each request moves the TAT.
    interval_ns: u64,
    /// How far ahead of now the TAT may be for a request to pass: the
    /// burst of `rate` requests at once.
    tolerance_ns: u64,
}

/// The answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over the rate: the whole seconds until one more would pass (at
    /// least 1), for `Retry-After`.
    Refused {
        retry_after: u64,
    },
}

impl Rate {
    /// `per_minute` requests a minute per key, counted in the bus bucket
    /// `bucket` (one per rate: its entries are this rate's state); `None`
    /// when `per_minute` is 0, no limit.
    pub async fn per_minute(
        bus: &Bus,
        bucket: &str,
        per_minute: u32,
    ) -> Result<Option<Self>, BusError> {
        let Some(rate) = NonZeroU32::new(per_minute) else {
            return Ok(None);
        };
        let interval_ns = MINUTE_NS / u64::from(rate.get());
        Ok(Some(Self {
            bucket: bus.bucket(bucket, Duration::from_nanos(MINUTE_NS)).await?,
            interval_ns,
            tolerance_ns: interval_ns * u64::from(rate.get() - 1),
        }))
    }

    /// Counts one request of `key` (a bus key: see
    /// [`crate::bus::escape_token`]), if it is within the rate.
    pub async fn check(&self, key: &str) -> Result<Verdict, BusError> {
        for _ in 0..MAX_ATTEMPTS {
            let entry = self.bucket.get(key).await?;
            let now = now_ns();
            let tat = entry.as_ref().map_or(now, arrival).max(now);
            let ahead = tat - now;
            if ahead > self.tolerance_ns {
                let wait = ahead - self.tolerance_ns;
                return Ok(Verdict::Refused {
                    retry_after: wait.div_ceil(1_000_000_000).max(1),
                });
            }
            let next = Bytes::from((tat + self.interval_ns).to_string());
            let written = match &entry {
                Some(entry) => self.bucket.update(key, next, entry.revision).await,
                None => self.bucket.create(key, next).await,
            };
            match written {
                Ok(_) => return Ok(Verdict::Allowed),
                Err(BusError::Conflict { .. }) => continue,
                Err(err) => return Err(err),
            }
        }
        Ok(Verdict::Refused { retry_after: 1 })
    }
}

/// The TAT an entry holds; one that cannot be read counts as none (a full
/// burst), and the next write replaces it.
fn arrival(entry: &Entry) -> u64 {
    std::str::from_utf8(&entry.value)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(0)
}

fn now_ns() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::tests::on_both;

    async fn rate(bus: &Bus, per_minute: u32) -> Rate {
        Rate::per_minute(bus, "rate", per_minute)
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn a_request_over_the_rate_is_refused_with_the_wait_and_other_keys_are_not() {
        on_both(|bus| async move {
            let rate = rate(&bus, 3).await;
            for _ in 0..3 {
                assert_eq!(rate.check("a").await.unwrap(), Verdict::Allowed);
            }
            let Verdict::Refused { retry_after } = rate.check("a").await.unwrap() else {
                panic!("the fourth of three a minute passed");
            };
            // One more comes back every 20 s.
            assert!((1..=20).contains(&retry_after), "{retry_after}");
            assert_eq!(rate.check("b").await.unwrap(), Verdict::Allowed);
        })
        .await;
    }

    #[tokio::test]
    async fn two_handles_on_one_bucket_share_the_count() {
        on_both(|bus| async move {
            let (one, other) = (rate(&bus, 2).await, rate(&bus, 2).await);
            assert_eq!(one.check("a").await.unwrap(), Verdict::Allowed);
            assert_eq!(other.check("a").await.unwrap(), Verdict::Allowed);
            assert!(matches!(
                one.check("a").await.unwrap(),
                Verdict::Refused { .. }
            ));
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_get_exactly_the_rate_through() {
        on_both(|bus| async move {
            let rate = rate(&bus, 5).await;
            let checks = (0..20).map(|_| {
                let rate = rate.clone();
                tokio::spawn(async move { rate.check("a").await.unwrap() })
            });
            let verdicts = futures_util::future::join_all(checks).await;
            let allowed = verdicts
                .iter()
                .filter(|verdict| matches!(verdict, Ok(Verdict::Allowed)))
                .count();
            // Each write lost is another let through: fewer than
            // MAX_ATTEMPTS here, so none is refused for the contention.
            assert_eq!(allowed, 5, "{verdicts:?}");
        })
        .await;
    }

    #[tokio::test]
    async fn a_rate_of_zero_is_no_limit() {
        let bus = Bus::in_process();
        assert!(Rate::per_minute(&bus, "rate", 0).await.unwrap().is_none());
    }
}
