//! How often and how patiently a turn tries to reach its agent.

use std::time::Duration;

use rand::Rng;

/// How often and how patiently a turn tries to reach its agent.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
}

impl RetryPolicy {
    /// The wait after failed attempt `n` (1-based): base × 2^(n-1), ±20 %
    /// so that many turns failing at once do not retry in lockstep.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exact = self.base.saturating_mul(1 << (attempt - 1).min(16));
        let jitter = rand::thread_rng().gen_range(0.8..=1.2);
        exact.mul_f64(jitter)
    }
}
