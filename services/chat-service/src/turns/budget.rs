//! Each user's turn budget (DESIGN §14), one for every way a turn can be
//! started (REST, SSE, OpenAI, unified, both WebSocket dialects): a rate of
//! turn starts per minute and a cap on turns in flight at once, both
//! holding across every chat-service instance (DESIGN §15); and, asked of
//! llm-proxy-service first, the user's and their API key's LLM budget
//! ([`super::llm_budget`]), which a refused start leaves untouched.
//!
//! [`crate::turns::begin::begin`] takes a [`TurnPermit`], so no entry point
//! can start a turn without one. A permit is asked for before anything is
//! written (a conversation made by the first message included), so a
//! refusal leaves nothing behind. It counts against the cap until the
//! turn's claim on its conversation is released, just before `done`.
//!
//! The rate is a kit [`Rate`] in the bus bucket [`RATE_BUCKET`], keyed by
//! user id, as the gateway's limits are: `turns_per_minute` at once,
//! refilled evenly over the minute. Every permit given counts as a start,
//! also one whose turn is then refused (409, 404): asking is what costs.
//!
//! The cap is `turns_in_flight` places per user, the keys `<user>.0` to
//! `<user>.<n-1>` of the bus bucket [`IN_FLIGHT_BUCKET`]; a permit holds one
//! for its instance ([`InstanceLease::take`]): taken with a create only one
//! permit can win, deleted when the permit is released, naming the
//! instance meanwhile. The places of an instance that died are free once
//! its lease has lapsed (`[chat] turn_lease_secs`): nothing to leak, no
//! count to repair, and nothing written while a turn runs, however many
//! run. A permit tries the places in order, so it costs one bus write when
//! the user has nothing running and a read or two more per turn they have;
//! a refused one never touches the rate.
//!
//! While the bus cannot be reached a permit is refused with 503
//! `bus_unavailable`, as the turn's claim would be.

use std::sync::Arc;
use std::time::Duration;

use confab_kit::bus::{Bucket, Bus, BusError, escape_token};
use confab_kit::lease::{Held, InstanceLease};
use confab_kit::rate::{Rate, Verdict};
use confab_protocol::ids::UserId;
use serde::Deserialize;

use super::llm_budget::LlmBudget;
use crate::error::{ChatError, TurnRefused};

/// The bucket of the users' turn starts.
pub const RATE_BUCKET: &str = "chat-turn-rate";

/// The bucket of the users' places for turns in flight.
pub const IN_FLIGHT_BUCKET: &str = "chat-turns-in-flight";

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
    rate: Option<Rate>,
    in_flight: Option<Places>,
    /// The LLM budget, kept by llm-proxy-service.
    llm: LlmBudget,
}

/// Each user's places for turns in flight.
struct Places {
    bucket: Bucket,
    /// Places per user.
    limit: usize,
    /// This instance, which holds the places of its turns.
    instance: Arc<InstanceLease>,
}

impl Places {
    /// One of the user's places, if one is free.
    async fn take(&self, user_id: &UserId) -> Result<Option<Held>, BusError> {
        let user = escape_token(user_id.as_str());
        // This permit's own mark, to tell its place from another's.
        let holder = confab_kit::ids::new_id("permit");
        for place in 0..self.limit {
            let key = format!("{user}.{place}");
            if let Some(held) = self.instance.take(&self.bucket, &key, &holder).await? {
                return Ok(Some(held));
            }
        }
        Ok(None)
    }
}

/// Leave to start one turn: a place among its user's turns in flight,
/// given back by [`TurnPermit::release`] (or, later, when dropped).
#[derive(Debug)]
pub struct TurnPermit {
    user_id: UserId,
    /// The personal API key the turn was asked for with, passed on to the
    /// agent so its LLM calls count against the key too.
    api_key_id: Option<String>,
    /// `None` with no cap on turns in flight, or once given back.
    place: Option<Held>,
}

impl TurnPermit {
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    pub fn api_key_id(&self) -> Option<&str> {
        self.api_key_id.as_deref()
    }

    /// Gives the place back before this returns, so the user's next turn,
    /// asked for as soon as this one ends, is not refused (a permit merely
    /// dropped gives it back in the background).
    pub async fn release(&mut self) {
        if let Some(place) = self.place.take() {
            place.release().await;
        }
    }
}

impl TurnBudget {
    /// The budget of `settings`, kept in `bus`'s buckets; the places of
    /// turns in flight are held by `instance`, free once it is dead; the
    /// LLM budget asked of `llm`.
    pub async fn open(
        bus: &Bus,
        settings: &LimitSettings,
        instance: Arc<InstanceLease>,
        llm: LlmBudget,
    ) -> Result<Arc<Self>, BusError> {
        let in_flight = match settings.turns_in_flight {
            0 => None,
            limit => Some(Places {
                // No TTL: a place lasts as long as its turn.
                bucket: bus.bucket(IN_FLIGHT_BUCKET, Duration::ZERO).await?,
                limit,
                instance,
            }),
        };
        Ok(Arc::new(Self {
            rate: Rate::per_minute(bus, RATE_BUCKET, settings.turns_per_minute).await?,
            in_flight,
            llm,
        }))
    }

    /// A permit for one turn of `user_id`, asked for with the API key
    /// `api_key_id` (if any): 429 `budget_exceeded` when their LLM budget
    /// (or the key's) is spent, 503 `budget_unavailable` when that cannot
    /// be checked; 429 `rate_limited` with the seconds to wait when they
    /// have as many turns in flight as they may, or started as many as
    /// they may this minute.
    pub async fn admit(
        &self,
        user_id: &UserId,
        api_key_id: Option<&str>,
    ) -> Result<TurnPermit, TurnRefused> {
        // First: a refusal for budget takes no place and no start.
        self.llm.check(user_id, api_key_id).await?;
        let mut permit = TurnPermit {
            user_id: user_id.clone(),
            api_key_id: api_key_id.map(str::to_owned),
            place: None,
        };
        if let Some(places) = &self.in_flight {
            let Some(place) = places.take(user_id).await? else {
                return Err(ChatError::TooManyTurnsInFlight {
                    limit: places.limit,
                    retry_after: IN_FLIGHT_RETRY_SECS,
                }
                .into());
            };
            permit.place = Some(place);
        }
        if let Some(rate) = &self.rate {
            let verdict = rate.check(&escape_token(user_id.as_str())).await;
            if verdict != Ok(Verdict::Allowed) {
                permit.release().await;
            }
            if let Verdict::Refused { retry_after } = verdict.map_err(ChatError::from)? {
                return Err(ChatError::TooManyTurnsThisMinute { retry_after }.into());
            }
        }
        Ok(permit)
    }
}

#[cfg(test)]
impl TurnBudget {
    /// A budget on an in-process bus of its own, held by an instance of
    /// its own.
    pub(crate) async fn on_own_bus(turns_per_minute: u32, turns_in_flight: usize) -> Arc<Self> {
        let settings = LimitSettings {
            turns_per_minute,
            turns_in_flight,
            sockets_per_user: 0,
            followers_per_user: 0,
        };
        let bus = Bus::in_process();
        let lease = Duration::from_secs(5);
        let instances = bus.bucket("instances", lease).await.unwrap();
        let instance = InstanceLease::start(instances, "chat", lease)
            .await
            .unwrap();
        let off = super::llm_budget::BudgetSettings {
            url: String::new(),
            enabled: false,
        };
        let llm = LlmBudget::new(&off, reqwest::Client::new(), "");
        Self::open(&bus, &settings, Arc::new(instance), llm)
            .await
            .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_kit::ApiError;

    async fn budget(turns_per_minute: u32, turns_in_flight: usize) -> Arc<TurnBudget> {
        TurnBudget::on_own_bus(turns_per_minute, turns_in_flight).await
    }

    /// How many places `user` holds.
    async fn held(budget: &TurnBudget, user: &str) -> usize {
        let places = budget.in_flight.as_ref().unwrap();
        let mut held = 0;
        for place in 0..places.limit {
            let key = format!("{user}.{place}");
            held += usize::from(places.bucket.get(&key).await.unwrap().is_some());
        }
        held
    }

    #[tokio::test]
    async fn a_turn_over_the_cap_is_refused_until_one_ends() {
        let budget = budget(0, 2).await;
        let mut first = budget.admit(&"usr-a".into(), None).await.unwrap();
        let second = budget.admit(&"usr-a".into(), None).await.unwrap();
        let refused = ApiError::from(budget.admit(&"usr-a".into(), None).await.unwrap_err());
        assert_eq!(refused.status().as_u16(), 429);
        assert_eq!(refused.code(), "rate_limited");
        assert_eq!(refused.retry_after(), Some(IN_FLIGHT_RETRY_SECS));
        budget.admit(&"usr-b".into(), None).await.unwrap();
        first.release().await;
        let _third = budget.admit(&"usr-a".into(), None).await.unwrap();

        // A permit merely dropped gives its place back too, soon after.
        drop(second);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while held(&budget, "usr-a").await > 1 {
            assert!(tokio::time::Instant::now() < deadline, "never given back");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        budget.admit(&"usr-a".into(), None).await.unwrap();
    }

    #[tokio::test]
    async fn a_start_over_the_rate_is_refused_with_the_wait() {
        let budget = budget(3, 0).await;
        for _ in 0..3 {
            budget.admit(&"usr-a".into(), None).await.unwrap();
        }
        let refused = ApiError::from(budget.admit(&"usr-a".into(), None).await.unwrap_err());
        assert_eq!(refused.status().as_u16(), 429);
        // One start comes back every 20 s.
        assert!(
            (1..=20).contains(&refused.retry_after().unwrap()),
            "{refused}"
        );
        budget.admit(&"usr-b".into(), None).await.unwrap();
    }

    #[tokio::test]
    async fn a_refusal_for_the_rate_gives_its_place_back() {
        let budget = budget(1, 1).await;
        budget
            .admit(&"usr-a".into(), None)
            .await
            .unwrap()
            .release()
            .await;
        budget.admit(&"usr-a".into(), None).await.unwrap_err();
        assert_eq!(held(&budget, "usr-a").await, 0);
    }
}
