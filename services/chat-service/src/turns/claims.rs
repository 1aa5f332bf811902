//! Which instance runs the turn of a conversation, for every instance to
//! see (DESIGN §15): one claim per conversation, in the bus bucket
//! [`BUCKET`], made with a create that only one instance can win (so a
//! second turn is 409 wherever it arrives). A claim names the instance
//! that runs the turn; it is written once, deleted when the turn ends, and
//! does not expire: whether its turn still runs is whether its instance is
//! alive, told by the instance's own lease in [`INSTANCES`]
//! ([`InstanceLease`]). One renewal per instance, however many turns it
//! runs: a burst of turns that slows the bus down does not make live turns
//! look dead (claims that each had to be renewed in time did).
//!
//! A claim whose instance is dead is stale: the instance that takes its
//! turn over (or, when its reply was saved already, the next turn) writes
//! over it at its revision, so one instance wins. An instance that was cut
//! off from the bus for longer than its lease writes its claims again at
//! their revisions when it is back ([`Claims::reassert`]); a claim written
//! over meanwhile is lost, and its turn stops without saving.
//!
//! Each instance also answers requests for the turns it runs on its own
//! control subject ([`Claims::control_subject`]): a cancel sent to any
//! instance reaches the one that runs the turn.

use std::time::Duration;

use bytes::Bytes;
use std::sync::Arc;

use confab_kit::bus::{Bucket, Bus, BusError};
use confab_kit::lease::InstanceLease;
use confab_protocol::ids::{ConversationId, MessageId, UserId};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

/// The bucket of the claims.
pub const BUCKET: &str = "turn-claims";

/// The bucket of the instances' leases.
pub const INSTANCES: &str = "chat-instances";

/// The bucket of each turn's claim as it was made, by reply id, kept as long
/// as the turn's events: what an instance taking over a turn whose claim
/// lapsed needs to know of it (where its events start).
pub const RECORDS: &str = "turn-records";

/// A conversation's claim by a running turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub user_id: UserId,
    /// The turn's reply.
    pub reply_id: MessageId,
    /// The instance running it.
    pub instance: String,
    /// The `turns` stream's last sequence before the turn's first event.
    pub start: u64,
}

/// A request to the instance running a turn.
#[derive(Debug, Serialize, Deserialize)]
pub enum Control {
    Cancel {
        conversation_id: ConversationId,
        user_id: UserId,
    },
}

/// The claims, as one instance sees and makes them.
#[derive(Clone)]
pub struct Claims {
    bus: Bus,
    bucket: Bucket,
    records: Bucket,
    /// This instance's name among the others, and its lease.
    instance: Arc<InstanceLease>,
}

impl Claims {
    /// The claims of `bus`, made by this instance (a fresh name per
    /// process, alive while it renews its `lease`); their records kept
    /// `keep`.
    pub async fn open(bus: &Bus, lease: Duration, keep: Duration) -> Result<Self, BusError> {
        let instances = bus.bucket(INSTANCES, lease).await?;
        Ok(Self {
            bus: bus.clone(),
            // No TTL: a claim lasts as long as its turn, however long.
            bucket: bus.bucket(BUCKET, Duration::ZERO).await?,
            records: bus.bucket(RECORDS, keep).await?,
            instance: Arc::new(InstanceLease::start(instances, "chat", lease).await?),
        })
    }

    pub fn instance(&self) -> &str {
        self.instance.id()
    }

    /// This instance's lease, to keep it (see [`InstanceLease::keep`]).
    pub fn instance_lease(&self) -> &Arc<InstanceLease> {
        &self.instance
    }

    pub fn lease(&self) -> Duration {
        self.instance.lease()
    }

    /// Whether the instance that made `claim` is alive (this one is).
    pub async fn is_alive(&self, claim: &Claim) -> Result<bool, BusError> {
        self.instance.alive(&claim.instance).await
    }

    /// Where the instance running a turn hears requests about it.
    pub fn control_subject(instance: &str) -> String {
        format!("chat.control.{instance}")
    }

    /// Claims the conversation; its revision, or `None` while another claim
    /// holds it.
    pub async fn take(
        &self,
        conversation_id: &ConversationId,
        claim: &Claim,
    ) -> Result<Option<u64>, BusError> {
        match self
            .bucket
            .create(conversation_id.as_str(), encode(claim))
            .instrument(self.bucket.span("claim", BUCKET))
            .await
        {
            Ok(revision) => Ok(Some(revision)),
            Err(BusError::Conflict { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Keeps `claim` as its turn's record (the first made for a turn stays).
    pub async fn record(&self, claim: &Claim) -> Result<(), BusError> {
        match self
            .records
            .create(claim.reply_id.as_str(), encode(claim))
            .await
        {
            Ok(_) | Err(BusError::Conflict { .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// The record of the turn whose reply is `reply_id`, if still kept.
    pub async fn recorded(&self, reply_id: &MessageId) -> Result<Option<Claim>, BusError> {
        let entry = self.records.get(reply_id.as_str()).await?;
        Ok(entry.and_then(|entry| serde_json::from_slice(&entry.value).ok()))
    }

    /// Writes `claim` over the conversation's claim at `revision` (a stale
    /// one, or this instance's own again); its new revision, or `None` when
    /// the claim is not at `revision` any more (someone else wrote it).
    pub async fn replace(
        &self,
        conversation_id: &ConversationId,
        claim: &Claim,
        revision: u64,
    ) -> Result<Option<u64>, BusError> {
        match self
            .bucket
            .update(conversation_id.as_str(), encode(claim), revision)
            .await
        {
            Ok(revision) => Ok(Some(revision)),
            Err(BusError::Conflict { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Writes this instance's `claim`, last written at `revision`, again:
    /// after the instance's lease lapsed, so that no instance takes its
    /// turn over from here on. Its new revision, or `None` when another
    /// instance took the turn over meanwhile.
    pub async fn reassert(
        &self,
        conversation_id: &ConversationId,
        claim: &Claim,
        revision: u64,
    ) -> Result<Option<u64>, BusError> {
        if let Some(revision) = self.replace(conversation_id, claim, revision).await? {
            return Ok(Some(revision));
        }
        // A write whose answer was lost moved the revision on: the claim
        // is still this one's if it says so.
        Ok(self
            .current(conversation_id)
            .await?
            .and_then(|(current, revision)| (current == *claim).then_some(revision)))
    }

    /// Lets the conversation go, if its claim is still `claim` (last
    /// written at `revision`).
    pub async fn let_go(&self, conversation_id: &ConversationId, claim: &Claim, revision: u64) {
        confab_kit::lease::let_go(
            &self.bucket,
            conversation_id.as_str(),
            &encode(claim),
            revision,
        )
        .instrument(self.bucket.span("release", BUCKET))
        .await;
    }

    /// The conversation's live claim, if any.
    pub async fn get(&self, conversation_id: &ConversationId) -> Result<Option<Claim>, BusError> {
        Ok(self.current(conversation_id).await?.map(|(claim, _)| claim))
    }

    /// The conversation's live claim and its revision, if any.
    pub async fn current(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Option<(Claim, u64)>, BusError> {
        let entry = self.bucket.get(conversation_id.as_str()).await?;
        Ok(entry.and_then(|entry| {
            let claim = serde_json::from_slice(&entry.value).ok()?;
            Some((claim, entry.revision))
        }))
    }

    /// Asks the instance running the caller's turn in the conversation to
    /// cancel it; whether it did.
    pub async fn cancel_elsewhere(
        &self,
        claim: &Claim,
        conversation_id: &ConversationId,
    ) -> Result<bool, BusError> {
        let control = Control::Cancel {
            conversation_id: conversation_id.clone(),
            user_id: claim.user_id.clone(),
        };
        let payload = Bytes::from(serde_json::to_vec(&control).unwrap_or_default());
        let answer = self
            .bus
            .request(
                &Self::control_subject(&claim.instance),
                payload,
                self.lease(),
            )
            .await?;
        Ok(answer.as_ref() == b"true")
    }
}

fn encode(claim: &Claim) -> Bytes {
    // A claim is plain data: encoding cannot fail.
    Bytes::from(serde_json::to_vec(claim).unwrap_or_default())
}
