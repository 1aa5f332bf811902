//! Which instance runs the turn of a conversation, for every instance to
//! see (DESIGN §15): one claim per conversation, in the bus bucket
//! [`BUCKET`], made with a create that only one instance can win (so a
//! second turn is 409 wherever it arrives) and held as a lease: its owner
//! writes it again every third of the lease, and a claim not written for a
//! whole lease is gone, its turn free to be taken over.
//!
//! Each instance also answers requests for the turns it runs on its own
//! control subject ([`Claims::control_subject`]): a cancel sent to any
//! instance reaches the one that runs the turn.

use std::time::Duration;

use bytes::Bytes;
use confab_kit::bus::{Bucket, Bus, BusError};
use confab_protocol::ids::{ConversationId, MessageId, UserId};
use serde::{Deserialize, Serialize};

/// The bucket of the claims.
pub const BUCKET: &str = "turn-claims";

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
    /// This instance's name among the others.
    instance: String,
    lease: Duration,
}

impl Claims {
    /// The claims of `bus`, held by this instance (a fresh name per
    /// process) for `lease` at a time; their records kept `keep`.
    pub async fn open(bus: &Bus, lease: Duration, keep: Duration) -> Result<Self, BusError> {
        Ok(Self {
            bus: bus.clone(),
            bucket: bus.bucket(BUCKET, lease).await?,
            records: bus.bucket(RECORDS, keep).await?,
            instance: confab_kit::ids::new_id("chat"),
            lease,
        })
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn lease(&self) -> Duration {
        self.lease
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

    /// Writes the claim again (its lease starts over); its new revision, or
    /// `Conflict` when it was lost meanwhile.
    pub async fn renew(
        &self,
        conversation_id: &ConversationId,
        claim: &Claim,
        revision: u64,
    ) -> Result<u64, BusError> {
        self.bucket
            .update(conversation_id.as_str(), encode(claim), revision)
            .await
    }

    /// Lets the conversation go, if the claim is still the one at `revision`.
    pub async fn release(
        &self,
        conversation_id: &ConversationId,
        revision: u64,
    ) -> Result<(), BusError> {
        self.bucket.delete(conversation_id.as_str(), revision).await
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
            .request(&Self::control_subject(&claim.instance), payload, self.lease)
            .await?;
        Ok(answer.as_ref() == b"true")
    }
}

fn encode(claim: &Claim) -> Bytes {
    // A claim is plain data: encoding cannot fail.
    Bytes::from(serde_json::to_vec(claim).unwrap_or_default())
}
