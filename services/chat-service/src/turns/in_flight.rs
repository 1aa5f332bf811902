//! The turns in flight, one per conversation at most: the way to refuse a
//! second turn (409), to reach a running turn to cancel it, and to find its
//! event log to re-attach to. A turn's claim holds its user's
//! [`TurnPermit`], so the turn counts against their budget while it runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

use super::budget::TurnPermit;
use super::log::TurnLog;

struct Entry {
    user_id: String,
    cancel: CancellationToken,
    log: Arc<TurnLog>,
}

#[derive(Default)]
pub struct InFlight {
    turns: Mutex<HashMap<String, Entry>>,
}

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.turns
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Claims the conversation for a new turn of the permit's user; `None`
    /// while another turn runs in it. The claim (and the permit) last as
    /// long as the returned guard.
    pub fn begin(self: &Arc<Self>, conversation_id: &str, permit: TurnPermit) -> Option<TurnClaim> {
        let mut turns = self.lock();
        if turns.contains_key(conversation_id) {
            return None;
        }
        let cancel = CancellationToken::new();
        let log = Arc::new(TurnLog::default());
        turns.insert(
            conversation_id.to_owned(),
            Entry {
                user_id: permit.user_id().to_owned(),
                cancel: cancel.clone(),
                log: log.clone(),
            },
        );
        drop(turns);
        Some(TurnClaim {
            registry: self.clone(),
            conversation_id: conversation_id.to_owned(),
            cancel,
            log,
            _permit: permit,
        })
    }

    /// The event log of the caller's turn in flight in the conversation.
    pub fn log(&self, conversation_id: &str, user_id: &str) -> Option<Arc<TurnLog>> {
        match self.lock().get(conversation_id) {
            Some(entry) if entry.user_id == user_id => Some(entry.log.clone()),
            _ => None,
        }
    }

    /// Asks the conversation's turn to stop. `false` when the caller has no
    /// turn in flight there (another user's turn counts as none).
    pub fn cancel(&self, conversation_id: &str, user_id: &str) -> bool {
        match self.lock().get(conversation_id) {
            Some(entry) if entry.user_id == user_id => {
                entry.cancel.cancel();
                true
            }
            _ => false,
        }
    }
}

/// A conversation's claim by a running turn; released when dropped, which
/// is when the turn has ended (or failed to start).
pub struct TurnClaim {
    registry: Arc<InFlight>,
    conversation_id: String,
    /// Fires when the turn is asked to stop.
    pub cancel: CancellationToken,
    /// Where the turn's events go.
    pub log: Arc<TurnLog>,
    /// Given back with the claim.
    _permit: TurnPermit,
}

impl Drop for TurnClaim {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.conversation_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::turns::budget::{LimitSettings, TurnBudget};

    #[tokio::test]
    async fn a_conversation_holds_one_turn_at_a_time() {
        let budget = TurnBudget::new(&LimitSettings {
            turns_per_minute: 0,
            turns_in_flight: 0,
            sockets_per_user: 0,
        });
        let permit = || budget.admit("usr-1").unwrap();
        let in_flight = Arc::new(InFlight::default());
        let claim = in_flight.begin("conv-1", permit()).unwrap();
        assert!(in_flight.begin("conv-1", permit()).is_none());
        assert!(in_flight.begin("conv-2", permit()).is_some());
        assert!(!in_flight.cancel("conv-1", "usr-2"), "another user's turn");
        assert!(!claim.cancel.is_cancelled());
        assert!(in_flight.cancel("conv-1", "usr-1"));
        assert!(claim.cancel.is_cancelled());
        drop(claim);
        assert!(in_flight.begin("conv-1", permit()).is_some());
    }
}
