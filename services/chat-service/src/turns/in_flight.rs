//! The turns in flight, one per conversation at most: the way to refuse a
//! second turn (409), to reach a running turn to cancel it, and to find its
//! event log to re-attach to. A turn's claim holds its user's
//! [`TurnPermit`], so the turn counts against their budget while it runs.
//!
//! The turns this instance runs are kept here, with their cancel signals;
//! every instance's turns are known through their [`Claims`] on the bus,
//! so a second turn is refused, a reader finds the log and a cancel reaches
//! the turn whichever instance runs it.
//!
//! A turn's log also outlives the turn for a while ([`Lingering`]): a client
//! that lost its connection near the end of a turn (an `EventSource`
//! reconnecting, a reloaded page) reads the events it missed from the log
//! itself, exactly, instead of a reply rebuilt from storage.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use confab_kit::bus::BusError;
use confab_kit::db::Db;
use confab_kit::lease::InstanceLease;
use confab_protocol::ids::{ConversationId, MessageId, UserId};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::budget::TurnPermit;
use super::claims::{Claim, Claims, Control};
use super::events::TurnEvents;
use super::log::TurnLog;
use crate::store::messages;

/// Most ended turns kept at once, whatever the linger time: a bound on the
/// memory a burst of turns can leave behind (each log holds one reply).
const MAX_LINGERING: usize = 10_000;

struct Entry {
    user_id: UserId,
    /// The id of the assistant message the turn writes.
    reply_id: MessageId,
    cancel: CancellationToken,
    log: Arc<TurnLog>,
    /// The turn's claim, and its revision (shared with its [`Hold`]).
    claim: Claim,
    revision: Arc<AtomicU64>,
    /// Fires when another instance took the turn over (see
    /// [`InFlight::keep_instance`]).
    lost: CancellationToken,
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
    claims: Claims,
    events: Arc<TurnEvents>,
    /// Where a stale claim's reply is looked up.
    db: Db,
}

impl InFlight {
    /// Claims conversations through `claims`, and keeps each ended turn's
    /// log for `linger` after the turn ended.
    pub fn new(linger: Duration, claims: Claims, events: Arc<TurnEvents>, db: Db) -> Self {
        Self {
            turns: Mutex::default(),
            lingering: Mutex::new(Lingering {
                linger,
                logs: HashMap::new(),
                ended: VecDeque::new(),
            }),
            claims,
            events,
            db,
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
    /// reply will be the message `reply_id` and whose events go to `log`;
    /// `None` while another turn runs in it, on any instance. The claim
    /// (and the permit) last until the returned guard is released.
    pub async fn begin(
        self: &Arc<Self>,
        conversation_id: &ConversationId,
        reply_id: &MessageId,
        permit: TurnPermit,
        log: Arc<TurnLog>,
    ) -> Result<Option<TurnClaim>, BusError> {
        if self.lock().contains_key(conversation_id) {
            return Ok(None);
        }
        let claim = self.new_claim(permit.user_id(), reply_id, &log);
        let revision = match self.claims.take(conversation_id, &claim).await? {
            Some(revision) => Some(revision),
            None => self.write_over_stale(conversation_id, &claim).await?,
        };
        let Some(revision) = revision else {
            return Ok(None);
        };
        self.hold(conversation_id, claim, revision, Some(permit), log)
            .await
            .map(Some)
    }

    /// Writes `claim` over the conversation's claim if that one is stale
    /// and holds nothing up: its instance died after its turn's reply was
    /// saved, or before the reply was written. A stale claim whose reply is
    /// still in flight stays, for the instance that takes its turn over.
    async fn write_over_stale(
        &self,
        conversation_id: &ConversationId,
        claim: &Claim,
    ) -> Result<Option<u64>, BusError> {
        let Some((stale, revision)) = self.claims.current(conversation_id).await? else {
            return Ok(None);
        };
        // (A live instance's claim of an ended turn is deleted by that
        // instance, once the bus can be reached: `kit::lease::let_go`.)
        if self.claims.is_alive(&stale).await? {
            return Ok(None);
        }
        match messages::is_in_flight(&self.db, &stale.reply_id).await {
            Ok(false) => {}
            Ok(true) => return Ok(None),
            Err(err) => {
                tracing::warn!(error = %err, "reading a stale claim's reply failed");
                return Ok(None);
            }
        }
        self.claims.replace(conversation_id, claim, revision).await
    }

    /// Claims the conversation for the turn of `reply_id` whose instance
    /// died (see `turns::takeover`), writing over its claim at `stale` (or
    /// anew, `None`, when it has none); no permit: the turn was admitted
    /// when it began. `None` when another instance was quicker.
    pub async fn take_over(
        self: &Arc<Self>,
        conversation_id: &ConversationId,
        reply_id: &MessageId,
        user_id: &UserId,
        log: Arc<TurnLog>,
        stale: Option<u64>,
    ) -> Result<Option<TurnClaim>, BusError> {
        if self.lock().contains_key(conversation_id) {
            return Ok(None);
        }
        let claim = self.new_claim(user_id, reply_id, &log);
        let revision = match stale {
            None => self.claims.take(conversation_id, &claim).await?,
            Some(stale) => self.claims.replace(conversation_id, &claim, stale).await?,
        };
        let Some(revision) = revision else {
            return Ok(None);
        };
        self.hold(conversation_id, claim, revision, None, log)
            .await
            .map(Some)
    }

    /// This instance's claim for the turn of `reply_id`, logged to `log`.
    fn new_claim(&self, user_id: &UserId, reply_id: &MessageId, log: &TurnLog) -> Claim {
        Claim {
            user_id: user_id.clone(),
            reply_id: reply_id.clone(),
            instance: self.claims.instance().to_owned(),
            start: log.start(),
        }
    }

    /// The turn of a claim just made (at `revision`), run here.
    async fn hold(
        self: &Arc<Self>,
        conversation_id: &ConversationId,
        claim: Claim,
        revision: u64,
        permit: Option<TurnPermit>,
        log: Arc<TurnLog>,
    ) -> Result<TurnClaim, BusError> {
        let cancel = CancellationToken::new();
        let lost = CancellationToken::new();
        let revision = Arc::new(AtomicU64::new(revision));
        self.lock().insert(
            conversation_id.clone(),
            Entry {
                user_id: claim.user_id.clone(),
                reply_id: claim.reply_id.clone(),
                cancel: cancel.clone(),
                log: log.clone(),
                claim: claim.clone(),
                revision: revision.clone(),
                lost: lost.clone(),
            },
        );
        let claimed = TurnClaim {
            registry: self.clone(),
            conversation_id: conversation_id.clone(),
            cancel,
            lost,
            log,
            hold: Some(Hold {
                claims: self.claims.clone(),
                conversation_id: conversation_id.clone(),
                claim: claim.clone(),
                revision,
            }),
            permit,
        };
        // After the claim: the record only ever describes a turn that ran.
        self.claims.record(&claim).await?;
        Ok(claimed)
    }

    /// This instance's lease: what holds its turns' places too.
    pub fn instance_lease(&self) -> &Arc<InstanceLease> {
        self.claims.instance_lease()
    }

    /// Renews this instance's lease for as long as the service runs, and
    /// whenever it lapsed (the bus was out of reach longer than the lease)
    /// writes the claims of the turns running here again: a turn another
    /// instance took over meanwhile is lost here and stops without saving
    /// (its new owner finishes it).
    pub fn keep_instance(self: &Arc<Self>) {
        let lease = self.claims.instance_lease().clone();
        lease.keep();
        let mut lapses = lease.lapses();
        let registry = self.clone();
        tokio::spawn(async move {
            while lapses.changed().await.is_ok() {
                registry.reassert().await;
            }
        });
    }

    async fn reassert(&self) {
        let held: Vec<_> = self
            .lock()
            .iter()
            .map(|(conversation_id, entry)| {
                let revision = entry.revision.clone();
                (
                    conversation_id.clone(),
                    entry.claim.clone(),
                    revision,
                    entry.lost.clone(),
                )
            })
            .collect();
        for (conversation_id, claim, revision, lost) in held {
            let current = revision.load(Ordering::SeqCst);
            match self
                .claims
                .reassert(&conversation_id, &claim, current)
                .await
            {
                Ok(Some(next)) => revision.store(next, Ordering::SeqCst),
                Ok(None) => {
                    tracing::warn!(%conversation_id, reply_id = %claim.reply_id, "another instance took this turn over while this one was cut off from the bus; it stops here");
                    lost.cancel();
                }
                Err(err) => {
                    tracing::warn!(error = %err, %conversation_id, "writing a turn's claim again failed");
                }
            }
        }
    }

    /// Whether this instance runs the conversation's turn.
    pub fn runs(&self, conversation_id: &ConversationId) -> bool {
        self.lock().contains_key(conversation_id)
    }

    /// The conversation's claim and its revision, if any, and whether its
    /// instance is alive.
    pub async fn claimed(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Option<(Claim, u64, bool)>, BusError> {
        let Some((claim, revision)) = self.claims.current(conversation_id).await? else {
            return Ok(None);
        };
        let alive = self.claims.is_alive(&claim).await?;
        Ok(Some((claim, revision, alive)))
    }

    /// What the claims know of the turn whose reply is `reply_id`.
    pub async fn record(&self, reply_id: &MessageId) -> Result<Option<Claim>, BusError> {
        self.claims.recorded(reply_id).await
    }

    /// How long a claim lasts unless renewed.
    pub fn lease(&self) -> Duration {
        self.claims.lease()
    }

    /// The event log of the caller's turn in flight in the conversation,
    /// on this instance or another.
    pub async fn log(
        &self,
        user_id: &UserId,
        conversation_id: &ConversationId,
    ) -> Option<Arc<TurnLog>> {
        if let Some(entry) = self.lock().get(conversation_id) {
            return (entry.user_id == *user_id).then(|| entry.log.clone());
        }
        let claim = self.claim(conversation_id).await?;
        (claim.user_id == *user_id).then(|| self.reader(conversation_id, &claim))
    }

    /// Whether the caller has a turn in flight in the conversation.
    pub async fn is_running(&self, user_id: &UserId, conversation_id: &ConversationId) -> bool {
        self.log(user_id, conversation_id).await.is_some()
    }

    /// The log of the caller's turn whose reply is `reply_id`: in flight in
    /// the conversation (on any instance), or ended here less than the
    /// linger time ago.
    pub async fn turn_log(
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
        {
            let mut lingering = self.lock_lingering();
            lingering.prune(Instant::now());
            if let Some((owner, log)) = lingering.logs.get(reply_id) {
                return (owner == user_id).then(|| log.clone());
            }
        }
        let claim = self.claim(conversation_id).await?;
        (claim.user_id == *user_id && claim.reply_id == *reply_id)
            .then(|| self.reader(conversation_id, &claim))
    }

    /// The conversation's claim by a turn of another instance. A bus that
    /// cannot be read counts as no claim: the reader falls back to what is
    /// stored.
    async fn claim(&self, conversation_id: &ConversationId) -> Option<Claim> {
        match self.claims.get(conversation_id).await {
            Ok(claim) => claim.filter(|claim| claim.instance != self.claims.instance()),
            Err(err) => {
                tracing::warn!(error = %err, "reading a turn's claim failed");
                None
            }
        }
    }

    fn reader(&self, conversation_id: &ConversationId, claim: &Claim) -> Arc<TurnLog> {
        TurnLog::reader(&self.events, conversation_id, &claim.reply_id, claim.start)
    }

    /// Asks the conversation's turn to stop, wherever it runs. `false` when
    /// the caller has no turn in flight there (another user's turn counts
    /// as none).
    pub async fn cancel(&self, user_id: &UserId, conversation_id: &ConversationId) -> bool {
        if self.lock().contains_key(conversation_id) {
            return self.cancel_here(user_id, conversation_id);
        }
        let Some(claim) = self.claim(conversation_id).await else {
            return false;
        };
        if claim.user_id != *user_id {
            return false;
        }
        match self.claims.cancel_elsewhere(&claim, conversation_id).await {
            Ok(canceled) => canceled,
            Err(err) => {
                tracing::warn!(error = %err, instance = claim.instance, "passing a cancel on failed");
                false
            }
        }
    }

    /// Cancels the caller's turn if it runs on this instance.
    fn cancel_here(&self, user_id: &UserId, conversation_id: &ConversationId) -> bool {
        match self.lock().get(conversation_id) {
            Some(entry) if entry.user_id == *user_id => {
                entry.cancel.cancel();
                true
            }
            _ => false,
        }
    }

    /// Answers the other instances' requests about the turns running here
    /// (see [`Claims::control_subject`]), for as long as the service runs.
    pub async fn serve_control(self: &Arc<Self>) -> Result<(), BusError> {
        let subject = Claims::control_subject(self.claims.instance());
        let mut requests = self.events.bus().serve(&subject).await?;
        let registry = self.clone();
        tokio::spawn(async move {
            while let Some(request) = requests.next().await {
                let answer = match serde_json::from_slice(&request.payload) {
                    Ok(Control::Cancel {
                        conversation_id,
                        user_id,
                    }) => registry.cancel_here(&user_id, &conversation_id),
                    Err(err) => {
                        tracing::warn!(error = %err, "an unreadable control request");
                        false
                    }
                };
                let answer = Bytes::from_static(if answer { b"true" } else { b"false" });
                if let Err(err) = request.respond(answer).await {
                    tracing::warn!(error = %err, "answering a control request failed");
                }
            }
        });
        Ok(())
    }
}

/// A turn's hold on its conversation's claim, until it lets it go.
struct Hold {
    claims: Claims,
    conversation_id: ConversationId,
    claim: Claim,
    /// The claim's last revision (moved on when it is written again).
    revision: Arc<AtomicU64>,
}

impl Hold {
    /// Deletes the claim if it is still this turn's.
    async fn release(self) {
        let revision = self.revision.load(Ordering::SeqCst);
        self.claims
            .let_go(&self.conversation_id, &self.claim, revision)
            .await;
    }
}

/// A conversation's claim by a running turn; released with
/// [`TurnClaim::release`] when the turn has ended (or, if the turn never
/// got that far, when it is dropped).
pub struct TurnClaim {
    registry: Arc<InFlight>,
    conversation_id: ConversationId,
    /// Fires when the turn is asked to stop.
    pub cancel: CancellationToken,
    /// Fires when another instance took the turn over: it stops at once,
    /// without saving.
    pub lost: CancellationToken,
    /// Where the turn's events go.
    pub log: Arc<TurnLog>,
    hold: Option<Hold>,
    /// Given back with the claim (none for a turn taken over).
    permit: Option<TurnPermit>,
}

impl TurnClaim {
    /// Frees the conversation for its next turn, on every instance.
    pub async fn release(mut self) {
        if let Some(hold) = self.hold.take() {
            hold.release().await;
        }
        if let Some(permit) = &mut self.permit {
            permit.release().await;
        }
    }
}

impl Drop for TurnClaim {
    fn drop(&mut self) {
        if let Some(hold) = self.hold.take() {
            tokio::spawn(hold.release());
        }
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
    use crate::turns::budget::TurnBudget;
    use confab_kit::bus::Bus;
    use confab_kit::testing::TestDatabase;
    use confab_protocol::chat::ChatEvent;

    async fn budget() -> Arc<TurnBudget> {
        TurnBudget::on_own_bus(0, 0).await
    }

    /// The turns of one instance on `bus`, ended turns' logs kept
    /// `linger`, stale claims' replies looked up in `db`.
    async fn instance(bus: &Bus, db: &Db, linger: Duration) -> Arc<InFlight> {
        bus.stream(&crate::turns::log::stream_spec(
            Duration::from_secs(60),
            1 << 20,
        ))
        .await
        .unwrap();
        let claims = Claims::open(bus, Duration::from_secs(5), Duration::from_secs(60))
            .await
            .unwrap();
        let events = TurnEvents::hear(bus).await.unwrap();
        Arc::new(InFlight::new(linger, claims, events, db.clone()))
    }

    async fn database() -> (TestDatabase, Db) {
        let database = TestDatabase::new("chat").await.unwrap();
        let db = Db::connect(&database.settings, &crate::store::MIGRATIONS)
            .await
            .unwrap();
        (database, db)
    }

    /// The turns of one instance on an in-process bus of its own.
    async fn registry(linger: Duration) -> (Arc<InFlight>, TestDatabase) {
        let (database, db) = database().await;
        (instance(&Bus::in_process(), &db, linger).await, database)
    }

    /// `user`'s claim of turn `reply` in `conversation`.
    async fn claim(
        in_flight: &Arc<InFlight>,
        budget: &TurnBudget,
        user: &str,
        conversation: &str,
        reply: &str,
    ) -> Option<TurnClaim> {
        let log = TurnLog::open(&in_flight.events, &conversation.into(), &reply.into());
        let permit = budget.admit(&user.into(), None).await.unwrap();
        in_flight
            .begin(&conversation.into(), &reply.into(), permit, log)
            .await
            .unwrap()
    }

    /// Whether `user` finds the log of turn `reply` in `conversation`.
    async fn finds_log(in_flight: &InFlight, user: &str, conversation: &str, reply: &str) -> bool {
        in_flight
            .turn_log(&user.into(), &conversation.into(), &reply.into())
            .await
            .is_some()
    }

    #[tokio::test]
    async fn a_conversation_holds_one_turn_at_a_time() {
        let budget = budget().await;
        let (in_flight, _db) = registry(Duration::ZERO).await;
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
            !in_flight.cancel(&"usr-2".into(), &"conv-1".into()).await,
            "another user's turn"
        );
        assert!(!held.cancel.is_cancelled());
        assert!(in_flight.cancel(&"usr-1".into(), &"conv-1".into()).await);
        assert!(held.cancel.is_cancelled());
        held.release().await;
        assert!(
            claim(&in_flight, &budget, "usr-1", "conv-1", "msg-4")
                .await
                .is_some()
        );
    }

    #[tokio::test]
    async fn an_ended_turns_log_lingers_for_its_owner_only() {
        let budget = budget().await;
        let (in_flight, _db) = registry(Duration::from_secs(60)).await;
        let held = claim(&in_flight, &budget, "usr-1", "conv-1", "msg-2")
            .await
            .unwrap();
        held.log.push(ChatEvent::Text { text: "hi".into() });
        assert!(finds_log(&in_flight, "usr-1", "conv-1", "msg-2").await);
        assert!(!finds_log(&in_flight, "usr-1", "conv-1", "msg-4").await);
        held.release().await;
        assert!(
            !in_flight
                .is_running(&"usr-1".into(), &"conv-1".into())
                .await
        );
        let kept = in_flight
            .turn_log(&"usr-1".into(), &"conv-1".into(), &"msg-2".into())
            .await
            .unwrap();
        assert_eq!(kept.len(), 1);
        assert!(!finds_log(&in_flight, "usr-2", "conv-1", "msg-2").await);

        // A claim refused its turn logged nothing: nothing lingers.
        let unused = claim(&in_flight, &budget, "usr-1", "conv-1", "msg-4")
            .await
            .unwrap();
        unused.release().await;
        assert!(!finds_log(&in_flight, "usr-1", "conv-1", "msg-4").await);
    }

    #[tokio::test]
    async fn without_a_linger_time_an_ended_turns_log_goes_with_it() {
        let budget = budget().await;
        let (in_flight, _db) = registry(Duration::ZERO).await;
        let held = claim(&in_flight, &budget, "usr-1", "conv-1", "msg-2")
            .await
            .unwrap();
        held.log.push(ChatEvent::Text { text: "hi".into() });
        held.release().await;
        assert!(!finds_log(&in_flight, "usr-1", "conv-1", "msg-2").await);
    }

    /// Two instances, A and B, on one in-process bus and one database.
    struct Pair {
        _database: TestDatabase,
        budget: Arc<TurnBudget>,
        a: Arc<InFlight>,
        b: Arc<InFlight>,
    }

    impl Pair {
        async fn start() -> Self {
            let bus = Bus::in_process();
            let (database, db) = database().await;
            Self {
                a: instance(&bus, &db, Duration::ZERO).await,
                b: instance(&bus, &db, Duration::ZERO).await,
                budget: budget().await,
                _database: database,
            }
        }
    }

    #[tokio::test]
    async fn a_claim_is_stale_only_once_its_instance_is_dead_and_its_reply_saved() {
        let Pair {
            _database,
            budget,
            a,
            b,
        } = Pair::start().await;
        // A's turn: its claim, never released (A dies with it).
        let held = claim(&a, &budget, "usr-1", "conv-1", "msg-2")
            .await
            .unwrap();
        std::mem::forget(held);
        assert!(
            claim(&b, &budget, "usr-1", "conv-1", "msg-4")
                .await
                .is_none(),
            "A is alive"
        );
        a.claims.instance_lease().release().await;
        // A is dead and its reply `msg-2` is in no database (A died before
        // writing it, or it was saved): B's turn writes over the claim.
        let taken = claim(&b, &budget, "usr-1", "conv-1", "msg-4").await;
        assert!(taken.is_some(), "a stale claim held the conversation");
        let (claim, _, alive) = b.claimed(&"conv-1".into()).await.unwrap().unwrap();
        assert_eq!(claim.reply_id, MessageId::from("msg-4"));
        assert!(alive);
    }

    #[tokio::test]
    async fn a_turn_taken_over_while_its_instance_was_cut_off_is_lost_there_only() {
        let Pair {
            _database,
            budget,
            a,
            b,
        } = Pair::start().await;
        let taken = claim(&a, &budget, "usr-1", "conv-1", "msg-2")
            .await
            .unwrap();
        let kept = claim(&a, &budget, "usr-1", "conv-2", "msg-9")
            .await
            .unwrap();
        // A's lease lapses; B takes the turn of conv-1 over (at its claim's
        // revision), not yet that of conv-2.
        a.claims.instance_lease().release().await;
        let (_, revision, alive) = b.claimed(&"conv-1".into()).await.unwrap().unwrap();
        assert!(!alive);
        let log = TurnLog::open(&b.events, &"conv-1".into(), &"msg-2".into());
        let over = b
            .take_over(
                &"conv-1".into(),
                &"msg-2".into(),
                &"usr-1".into(),
                log,
                Some(revision),
            )
            .await
            .unwrap()
            .expect("taken over");
        // A is back: it writes its claims again. conv-1's turn is lost to A,
        // conv-2's is A's again, and B can no longer take it.
        a.claims.instance_lease().renew().await.unwrap();
        a.reassert().await;
        assert!(taken.lost.is_cancelled());
        assert!(!kept.lost.is_cancelled());
        assert!(!over.lost.is_cancelled());
        let (_, revision, alive) = b.claimed(&"conv-2".into()).await.unwrap().unwrap();
        assert!(alive);
        let log = TurnLog::open(&b.events, &"conv-2".into(), &"msg-9".into());
        let stale_write = b
            .take_over(
                &"conv-2".into(),
                &"msg-9".into(),
                &"usr-1".into(),
                log,
                Some(revision - 1),
            )
            .await
            .unwrap();
        assert!(
            stale_write.is_none(),
            "a takeover at a revision A wrote over"
        );
        // A's lost turn lets go of nothing that is B's now.
        taken.release().await;
        let (claim, _, _) = b.claimed(&"conv-1".into()).await.unwrap().unwrap();
        assert_eq!(claim.instance, b.claims.instance());
    }
}
