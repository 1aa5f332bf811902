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
use confab_kit::bus::{Bus, BusError};
use confab_protocol::ids::{ConversationId, MessageId, UserId};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::budget::TurnPermit;
use super::claims::{Claim, Claims, Control};
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
    claims: Claims,
    bus: Bus,
}

impl InFlight {
    /// Claims conversations through `claims`, and keeps each ended turn's
    /// log for `linger` after the turn ended.
    pub fn new(linger: Duration, claims: Claims, bus: Bus) -> Self {
        Self {
            turns: Mutex::default(),
            lingering: Mutex::new(Lingering {
                linger,
                logs: HashMap::new(),
                ended: VecDeque::new(),
            }),
            claims,
            bus,
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
        let user_id = permit.user_id().clone();
        self.claim_for(conversation_id, reply_id, &user_id, Some(permit), log)
            .await
    }

    /// Claims the conversation for the turn of `reply_id` whose instance
    /// died (see `turns::takeover`): no permit, the turn was admitted when
    /// it began. `None` when another instance was quicker.
    pub async fn take_over(
        self: &Arc<Self>,
        conversation_id: &ConversationId,
        reply_id: &MessageId,
        user_id: &UserId,
        log: Arc<TurnLog>,
    ) -> Result<Option<TurnClaim>, BusError> {
        self.claim_for(conversation_id, reply_id, user_id, None, log)
            .await
    }

    async fn claim_for(
        self: &Arc<Self>,
        conversation_id: &ConversationId,
        reply_id: &MessageId,
        user_id: &UserId,
        permit: Option<TurnPermit>,
        log: Arc<TurnLog>,
    ) -> Result<Option<TurnClaim>, BusError> {
        if self.lock().contains_key(conversation_id) {
            return Ok(None);
        }
        let claim = Claim {
            user_id: user_id.clone(),
            reply_id: reply_id.clone(),
            instance: self.claims.instance().to_owned(),
            start: log.start(),
        };
        let Some(revision) = self.claims.take(conversation_id, &claim).await? else {
            return Ok(None);
        };
        let cancel = CancellationToken::new();
        self.lock().insert(
            conversation_id.clone(),
            Entry {
                user_id: claim.user_id.clone(),
                reply_id: reply_id.clone(),
                cancel: cancel.clone(),
                log: log.clone(),
            },
        );
        let lease = Lease::hold(
            self.claims.clone(),
            conversation_id.clone(),
            claim.clone(),
            revision,
        );
        let claimed = TurnClaim {
            registry: self.clone(),
            conversation_id: conversation_id.clone(),
            cancel,
            log,
            lease: Some(lease),
            permit,
        };
        // After the claim: the record only ever describes a turn that ran.
        self.claims.record(&claim).await?;
        Ok(Some(claimed))
    }

    /// Whether any instance (this one too) claims the conversation now.
    pub async fn is_claimed(&self, conversation_id: &ConversationId) -> Result<bool, BusError> {
        if self.lock().contains_key(conversation_id) {
            return Ok(true);
        }
        Ok(self.claims.get(conversation_id).await?.is_some())
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
        TurnLog::reader(&self.bus, conversation_id, &claim.reply_id, claim.start)
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
        let mut requests = self.bus.serve(&subject).await?;
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

/// A turn's hold on its conversation's claim: written again every third of
/// the lease until it is let go.
struct Lease {
    claims: Claims,
    conversation_id: ConversationId,
    claim: Claim,
    revision: Arc<AtomicU64>,
    stop: CancellationToken,
    renewer: tokio::task::JoinHandle<()>,
}

impl Lease {
    fn hold(claims: Claims, conversation_id: ConversationId, claim: Claim, revision: u64) -> Self {
        let revision = Arc::new(AtomicU64::new(revision));
        let stop = CancellationToken::new();
        let renewer = tokio::spawn(renew(
            claims.clone(),
            conversation_id.clone(),
            claim.clone(),
            revision.clone(),
            stop.clone(),
        ));
        Self {
            claims,
            conversation_id,
            claim,
            revision,
            stop,
            renewer,
        }
    }

    /// Stops renewing (a renewal under way finishes first, so the revision
    /// is the last one written) and deletes the claim.
    async fn release(self) {
        self.stop.cancel();
        let _ = self.renewer.await;
        let mut revision = self.revision.load(Ordering::SeqCst);
        for _ in 0..3 {
            match self.claims.release(&self.conversation_id, revision).await {
                Ok(()) => return,
                Err(BusError::Conflict { .. }) => {
                    // Renewed by a write whose answer was lost: delete it
                    // if it is still ours, at its revision.
                    match self.claims.current(&self.conversation_id).await {
                        Ok(Some((claim, current))) if claim == self.claim => revision = current,
                        _ => return,
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, conversation_id = %self.conversation_id, "releasing a turn's claim failed; it lapses with its lease");
                    return;
                }
            }
        }
    }
}

async fn renew(
    claims: Claims,
    conversation_id: ConversationId,
    claim: Claim,
    revision: Arc<AtomicU64>,
    stop: CancellationToken,
) {
    let every = claims.lease() / 3;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let current = revision.load(Ordering::SeqCst);
        match claims.renew(&conversation_id, &claim, current).await {
            Ok(next) => revision.store(next, Ordering::SeqCst),
            Err(BusError::Conflict { .. }) => {
                tracing::error!(%conversation_id, "a running turn's claim was lost (another instance took the turn over)");
                return;
            }
            Err(err) => {
                tracing::warn!(error = %err, %conversation_id, "renewing a turn's claim failed; trying again");
            }
        }
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
    /// Where the turn's events go.
    pub log: Arc<TurnLog>,
    lease: Option<Lease>,
    /// Given back with the claim (none for a turn taken over).
    permit: Option<TurnPermit>,
}

impl TurnClaim {
    /// Frees the conversation for its next turn, on every instance.
    pub async fn release(mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release().await;
        }
        if let Some(permit) = &mut self.permit {
            permit.release().await;
        }
    }
}

impl Drop for TurnClaim {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            tokio::spawn(lease.release());
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
    use crate::turns::budget::{LimitSettings, TurnBudget};
    use confab_protocol::chat::ChatEvent;

    async fn budget() -> Arc<TurnBudget> {
        let settings = LimitSettings {
            turns_per_minute: 0,
            turns_in_flight: 0,
            sockets_per_user: 0,
            followers_per_user: 0,
        };
        TurnBudget::open(&Bus::in_process(), &settings, Duration::from_secs(5))
            .await
            .unwrap()
    }

    /// The turns of one instance on an in-process bus, ended turns' logs
    /// kept `linger`.
    async fn registry(linger: Duration) -> Arc<InFlight> {
        let bus = Bus::in_process();
        bus.stream(&crate::turns::log::stream_spec(
            Duration::from_secs(60),
            1 << 20,
        ))
        .await
        .unwrap();
        let claims = Claims::open(&bus, Duration::from_secs(5), Duration::from_secs(60))
            .await
            .unwrap();
        Arc::new(InFlight::new(linger, claims, bus))
    }

    /// `user`'s claim of turn `reply` in `conversation`.
    async fn claim(
        in_flight: &Arc<InFlight>,
        budget: &TurnBudget,
        user: &str,
        conversation: &str,
        reply: &str,
    ) -> Option<TurnClaim> {
        let log = TurnLog::open(&in_flight.bus, &conversation.into(), &reply.into())
            .await
            .unwrap();
        let permit = budget.admit(&user.into()).await.unwrap();
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
        let in_flight = registry(Duration::ZERO).await;
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
        let in_flight = registry(Duration::from_secs(60)).await;
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
        let in_flight = registry(Duration::ZERO).await;
        let held = claim(&in_flight, &budget, "usr-1", "conv-1", "msg-2")
            .await
            .unwrap();
        held.log.push(ChatEvent::Text { text: "hi".into() });
        held.release().await;
        assert!(!finds_log(&in_flight, "usr-1", "conv-1", "msg-2").await);
    }
}
