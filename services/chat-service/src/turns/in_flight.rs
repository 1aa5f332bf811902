//! The turns in flight, one per conversation at most: the way to refuse a
//! second turn (409), to reach a running turn to cancel it, and to find its
//! event log to re-attach to. A turn's claim holds its user's
//! [`TurnPermit`], so the turn counts against their budget while it runs.
//!
//! A turn's log also outlives the turn for a while ([`Lingering`]): a client
//! that lost its connection near the end of a turn (an `EventSource`
//! reconnecting, a reloaded page) reads the events it missed from the log
//! itself, exactly, instead of a reply rebuilt from storage.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use confab_protocol::ids::{ConversationId, MessageId, UserId};
use tokio_util::sync::CancellationToken;

use super::budget::TurnPermit;
use super::log::TurnLog;

/// Most ended turns kept at once, whatever the linger time: a bound on the
/// memory a burst of turns can leave behind (each log holds one reply).
const MAX_LINGERING: usize = 10_000;

struct Entry {
    user_id: UserId,
    /// The id of the assistant message the turn writes.
    reply_id: MessageId,
    cancel: CancellationToken,
    log: Arc<TurnLog>,
}

/// Logs of ended turns by reply id, kept `linger` after their turn ended.
struct Lingering {
    linger: Duration,
    logs: HashMap<MessageId, (UserId, Arc<TurnLog>)>,
    /// When each turn ended, oldest first, to let them go in order.
    ended: VecDeque<(Instant, MessageId)>,
}

impl Lingering {
    fn keep(&mut self, user_id: UserId, reply_id: MessageId, log: Arc<TurnLog>) {
        if self.linger.is_zero() {
            return;
        }
        let now = Instant::now();
        self.prune(now);
        while self.ended.len() >= MAX_LINGERING {
            if let Some((_, oldest)) = self.ended.pop_front() {
                self.logs.remove(&oldest);
            }
        }
        self.ended.push_back((now, reply_id.clone()));
        self.logs.insert(reply_id, (user_id, log));
    }

    fn prune(&mut self, now: Instant) {
        while let Some((at, _)) = self.ended.front() {
            if now.duration_since(*at) < self.linger {
                break;
            }
            if let Some((_, reply_id)) = self.ended.pop_front() {
                self.logs.remove(&reply_id);
            }
        }
    }
}

pub struct InFlight {
    turns: Mutex<HashMap<ConversationId, Entry>>,
    lingering: Mutex<Lingering>,
}

impl Default for InFlight {
    /// No ended turn is kept.
    fn default() -> Self {
        Self::new(Duration::ZERO)
    }
}

impl InFlight {
    /// Keeps each ended turn's log for `linger` after the turn ended.
    pub fn new(linger: Duration) -> Self {
        Self {
            turns: Mutex::default(),
            lingering: Mutex::new(Lingering {
                linger,
                logs: HashMap::new(),
                ended: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ConversationId, Entry>> {
        self.turns
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_lingering(&self) -> MutexGuard<'_, Lingering> {
        // Every change is a few inserts and removes of whole entries.
        self.lingering
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Claims the conversation for a new turn of the permit's user, whose
    /// reply will be the message `reply_id` and whose events go to `log`; `None` while another turn runs
    /// in it. The claim (and the permit) last as long as the returned guard.
    pub fn begin(
        self: &Arc<Self>,
        conversation_id: &ConversationId,
        reply_id: &MessageId,
        permit: TurnPermit,
        log: Arc<TurnLog>,
    ) -> Option<TurnClaim> {
        let mut turns = self.lock();
        if turns.contains_key(conversation_id) {
            return None;
        }
        let cancel = CancellationToken::new();
        turns.insert(
            conversation_id.clone(),
            Entry {
                user_id: permit.user_id().clone(),
                reply_id: reply_id.clone(),
                cancel: cancel.clone(),
                log: log.clone(),
            },
        );
        drop(turns);
        Some(TurnClaim {
            registry: self.clone(),
            conversation_id: conversation_id.clone(),
            cancel,
            log,
            _permit: permit,
        })
    }

    /// The event log of the caller's turn in flight in the conversation.
    pub fn log(&self, user_id: &UserId, conversation_id: &ConversationId) -> Option<Arc<TurnLog>> {
        match self.lock().get(conversation_id) {
            Some(entry) if entry.user_id == *user_id => Some(entry.log.clone()),
            _ => None,
        }
    }

    /// Whether the caller has a turn in flight in the conversation.
    pub fn is_running(&self, user_id: &UserId, conversation_id: &ConversationId) -> bool {
        self.log(user_id, conversation_id).is_some()
    }

    /// The log of the caller's turn whose reply is `reply_id`: in flight in
    /// the conversation, or ended less than the linger time ago.
    pub fn turn_log(
        &self,
        user_id: &UserId,
        conversation_id: &ConversationId,
        reply_id: &MessageId,
    ) -> Option<Arc<TurnLog>> {
        if let Some(entry) = self.lock().get(conversation_id)
            && entry.user_id == *user_id
            && entry.reply_id == *reply_id
        {
            return Some(entry.log.clone());
        }
        let mut lingering = self.lock_lingering();
        lingering.prune(Instant::now());
        match lingering.logs.get(reply_id) {
            Some((owner, log)) if owner == user_id => Some(log.clone()),
            _ => None,
        }
    }

    /// Asks the conversation's turn to stop. `false` when the caller has no
    /// turn in flight there (another user's turn counts as none).
    pub fn cancel(&self, user_id: &UserId, conversation_id: &ConversationId) -> bool {
        match self.lock().get(conversation_id) {
            Some(entry) if entry.user_id == *user_id => {
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
    conversation_id: ConversationId,
    /// Fires when the turn is asked to stop.
    pub cancel: CancellationToken,
    /// Where the turn's events go.
    pub log: Arc<TurnLog>,
    /// Given back with the claim.
    _permit: TurnPermit,
}

impl Drop for TurnClaim {
    fn drop(&mut self) {
        let entry = self.registry.lock().remove(&self.conversation_id);
        // A turn that never started (refused after its claim) logged
        // nothing and has nothing to keep.
        if let Some(entry) = entry.filter(|e| !e.log.is_empty()) {
            self.registry
                .lock_lingering()
                .keep(entry.user_id, entry.reply_id, entry.log);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::turns::budget::{LimitSettings, TurnBudget};
    use confab_protocol::chat::ChatEvent;

    fn budget() -> Arc<TurnBudget> {
        TurnBudget::new(&LimitSettings {
            turns_per_minute: 0,
            turns_in_flight: 0,
            sockets_per_user: 0,
            followers_per_user: 0,
        })
    }

    /// `user`'s claim of turn `reply` in `conversation`.
    async fn claim(
        in_flight: &Arc<InFlight>,
        budget: &TurnBudget,
        user: &str,
        conversation: &str,
        reply: &str,
    ) -> Option<TurnClaim> {
        let bus = confab_kit::bus::Bus::in_process();
        bus.stream(&crate::turns::log::stream_spec(
            Duration::from_secs(60),
            1 << 20,
        ))
        .await
        .unwrap();
        let log = TurnLog::open(&bus, &conversation.into(), &reply.into())
            .await
            .unwrap();
        let permit = budget.admit(&user.into()).unwrap();
        in_flight.begin(&conversation.into(), &reply.into(), permit, log)
    }

    /// Whether `user` finds the log of turn `reply` in `conversation`.
    fn finds_log(in_flight: &InFlight, user: &str, conversation: &str, reply: &str) -> bool {
        in_flight
            .turn_log(&user.into(), &conversation.into(), &reply.into())
            .is_some()
    }

    #[tokio::test]
    async fn a_conversation_holds_one_turn_at_a_time() {
        let budget = budget();
        let in_flight = Arc::new(InFlight::default());
        let held = claim(&in_flight, &budget, "usr-1", "conv-1", "msg-2")
            .await
            .unwrap();
        assert!(
            claim(&in_flight, &budget, "usr-1", "conv-1", "msg-4")
                .await
                .is_none()
        );
        assert!(
            claim(&in_flight, &budget, "usr-1", "conv-2", "msg-9")
                .await
                .is_some()
        );
        assert!(
            !in_flight.cancel(&"usr-2".into(), &"conv-1".into()),
            "another user's turn"
        );
        assert!(!held.cancel.is_cancelled());
        assert!(in_flight.cancel(&"usr-1".into(), &"conv-1".into()));
        assert!(held.cancel.is_cancelled());
        drop(held);
        assert!(
            claim(&in_flight, &budget, "usr-1", "conv-1", "msg-4")
                .await
                .is_some()
        );
    }

    #[tokio::test]
    async fn an_ended_turns_log_lingers_for_its_owner_only() {
        let budget = budget();
        let in_flight = Arc::new(InFlight::new(Duration::from_secs(60)));
        let held = claim(&in_flight, &budget, "usr-1", "conv-1", "msg-2")
            .await
            .unwrap();
        held.log.push(ChatEvent::Text { text: "hi".into() });
        assert!(finds_log(&in_flight, "usr-1", "conv-1", "msg-2"));
        assert!(!finds_log(&in_flight, "usr-1", "conv-1", "msg-4"));
        drop(held);
        assert!(!in_flight.is_running(&"usr-1".into(), &"conv-1".into()));
        let kept = in_flight
            .turn_log(&"usr-1".into(), &"conv-1".into(), &"msg-2".into())
            .unwrap();
        assert_eq!(kept.len(), 1);
        assert!(!finds_log(&in_flight, "usr-2", "conv-1", "msg-2"));

        // A claim refused its turn logged nothing: nothing lingers.
        let unused = claim(&in_flight, &budget, "usr-1", "conv-1", "msg-4")
            .await
            .unwrap();
        drop(unused);
        assert!(!finds_log(&in_flight, "usr-1", "conv-1", "msg-4"));
    }

    #[tokio::test]
    async fn without_a_linger_time_an_ended_turns_log_goes_with_it() {
        let budget = budget();
        let in_flight = Arc::new(InFlight::default());
        let held = claim(&in_flight, &budget, "usr-1", "conv-1", "msg-2")
            .await
            .unwrap();
        held.log.push(ChatEvent::Text { text: "hi".into() });
        drop(held);
        assert!(!finds_log(&in_flight, "usr-1", "conv-1", "msg-2"));
    }
}
