//! Each user's turn budget (DESIGN §14), one for every way a turn can be
//! started (REST, SSE, OpenAI, unified, both WebSocket dialects): a rate of
//! turn starts per minute and a cap on turns in flight at once.
//!
//! [`crate::turns::begin::begin`] takes a [`TurnPermit`], so no entry point
//! can start a turn without one. A permit is asked for before anything is
//! written (a conversation made by the first message included), so a
//! refusal leaves nothing behind. It counts against the cap until the
//! turn's claim on its conversation is released, just before `done`.
//!
//! The rate is a GCRA limiter from `governor` keyed by user id, as the
//! gateway's: `turns_per_minute` at once, refilled evenly over the minute.
//! Every permit given counts as a start, also one whose turn is then
//! refused (409, 404): asking is what costs. Limits are per chat-service
//! process.

use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use confab_kit::slots::{UserSlot, UserSlots};
use confab_protocol::ids::UserId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::Deserialize;

use crate::error::ChatError;

/// `Retry-After` of a refusal for too many turns in flight: when one ends
/// is not known; a reply takes seconds, so asking again sooner would
/// only be refused again.
const IN_FLIGHT_RETRY_SECS: u64 = 2;

#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    /// Turns a user may start per minute, by any entry point; 0: no limit.
    pub turns_per_minute: u32,
    /// Turns of one user running at once; 0: no limit.
    pub turns_in_flight: usize,
    /// Chat WebSockets one user may have open; 0: no limit.
    pub sockets_per_user: usize,
    /// Conversation followers (`GET /chat/sessions/{id}/messages/stream`,
    /// an `EventSource` each) one user may have open; 0: no limit.
    pub followers_per_user: usize,
}

pub struct TurnBudget {
    rate: Option<DefaultKeyedRateLimiter<UserId>>,
    in_flight: Arc<UserSlots>,
}

/// Leave to start one turn: a place among its user's turns in flight,
/// given back when dropped.
#[derive(Debug)]
pub struct TurnPermit {
    user_id: UserId,
    _slot: UserSlot,
}

impl TurnPermit {
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }
}

impl TurnBudget {
    pub fn new(settings: &LimitSettings) -> Arc<Self> {
        let budget = Arc::new(Self {
            rate: NonZeroU32::new(settings.turns_per_minute)
                .map(|n| DefaultKeyedRateLimiter::keyed(Quota::per_minute(n))),
            in_flight: UserSlots::new(settings.turns_in_flight),
        });
        tokio::spawn(forget_idle_keys(Arc::downgrade(&budget)));
        budget
    }

    /// A permit for one turn of `user_id`; 429 `rate_limited` with the
    /// seconds to wait when they have as many turns in flight as they may,
    /// or started as many as they may this minute.
    pub fn admit(&self, user_id: &UserId) -> Result<TurnPermit, ChatError> {
        let Some(slot) = self.in_flight.take(user_id.as_str()) else {
            let limit = self.in_flight.limit();
            return Err(ChatError::TooManyTurnsInFlight {
                limit,
                retry_after: IN_FLIGHT_RETRY_SECS,
            });
        };
        if let Some(rate) = &self.rate {
            // The slot goes back when this returns early.
            rate.check_key(user_id).map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                ChatError::TooManyTurnsThisMinute { retry_after: secs }
            })?;
        }
        Ok(TurnPermit {
            user_id: user_id.clone(),
            _slot: slot,
        })
    }
}

/// 60 s: a key idle that long is back at its full burst anyway.
async fn forget_idle_keys(budget: Weak<TurnBudget>) {
    let mut ticks = tokio::time::interval(Duration::from_secs(60));
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(budget) = budget.upgrade() else {
            return;
        };
        if let Some(rate) = &budget.rate {
            rate.retain_recent();
            rate.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_kit::ApiError;

    fn budget(turns_per_minute: u32, turns_in_flight: usize) -> Arc<TurnBudget> {
        TurnBudget::new(&LimitSettings {
            turns_per_minute,
            turns_in_flight,
            sockets_per_user: 0,
            followers_per_user: 0,
        })
    }

    #[tokio::test]
    async fn a_turn_over_the_cap_is_refused_until_one_ends() {
        let budget = budget(0, 2);
        let first = budget.admit(&"usr-a".into()).unwrap();
        let _second = budget.admit(&"usr-a".into()).unwrap();
        let refused = ApiError::from(budget.admit(&"usr-a".into()).unwrap_err());
        assert_eq!(refused.status().as_u16(), 429);
        assert_eq!(refused.code(), "rate_limited");
        assert_eq!(refused.retry_after(), Some(IN_FLIGHT_RETRY_SECS));
        budget.admit(&"usr-b".into()).unwrap();
        drop(first);
        budget.admit(&"usr-a".into()).unwrap();
    }

    #[tokio::test]
    async fn a_start_over_the_rate_is_refused_with_the_wait() {
        let budget = budget(3, 0);
        for _ in 0..3 {
            drop(budget.admit(&"usr-a".into()).unwrap());
        }
        let refused = ApiError::from(budget.admit(&"usr-a".into()).unwrap_err());
        assert_eq!(refused.status().as_u16(), 429);
        // One start comes back every 20 s.
        assert!(
            (1..=20).contains(&refused.retry_after().unwrap()),
            "{refused}"
        );
        budget.admit(&"usr-b".into()).unwrap();
    }

    #[tokio::test]
    async fn a_refusal_for_the_rate_gives_its_place_back() {
        let budget = budget(1, 1);
        drop(budget.admit(&"usr-a".into()).unwrap());
        budget.admit(&"usr-a".into()).unwrap_err();
        assert_eq!(budget.in_flight.held("usr-a"), 0);
    }
}
