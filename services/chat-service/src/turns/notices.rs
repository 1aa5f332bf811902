//! News of one conversation for the chat sockets attached to it: a turn
//! started there (by any client), its tree edited over one of them.
//!
//! News goes over the bus (stream [`STREAM`], subject per conversation),
//! so the sockets of every instance hear it; each instance reads the whole
//! stream once and hands each notice to its own sockets. Each watched
//! conversation has its own broadcast channel, made when the first socket
//! attaches and removed when the last one leaves, so a socket wakes only
//! for its own conversation and news of a conversation nobody watches
//! costs a map lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use confab_kit::bus::{Bus, BusError, StreamSpec};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use confab_protocol::chat::ChatEvent;
use confab_protocol::ids::{ConversationId, UserId};
use serde_json::Value;

/// The bus stream of the conversations' news.
pub const STREAM: &str = "notices";

/// News is for the sockets attached now: kept a minute, for a reader held
/// up by a bus outage.
fn stream_spec() -> StreamSpec {
    StreamSpec {
        name: STREAM.to_owned(),
        subjects: format!("{STREAM}.>"),
        max_age: Duration::from_secs(60),
        max_bytes: 16 << 20,
    }
}

/// News waiting for the slowest socket of a conversation. When it is full
/// the oldest go: a socket that fell behind looks for the turn in flight
/// itself, and learns at its next tree edit (`stale_tree`) that the tree
/// moved on.
const NOTICES_PER_CONVERSATION: usize = 64;

#[derive(Debug, Clone)]
pub enum Notice {
    /// A turn started; its log is found with
    /// [`crate::turns::in_flight::InFlight::log`].
    TurnStarted,
    /// A client's edit of the tree was applied ([`crate::trees`]).
    TreeEdited(Arc<TreeEdited>),
}

/// One client edit of a conversation's tree that was applied
/// ([`crate::trees::edit`]), as news for the other sockets on the
/// conversation.
#[derive(Debug, Serialize, Deserialize)]
pub struct TreeEdited {
    /// The instance and socket the edit came from (which answers it
    /// directly); set by [`TreeEdited::announce`].
    #[serde(default)]
    pub instance: String,
    pub socket: u64,
    pub user_id: UserId,
    pub delta: Value,
    pub version: i64,
}

impl TreeEdited {
    /// Tells the sockets on `conversation_id` about the edit.
    pub fn announce(mut self, notices: &Notices, conversation_id: &ConversationId) {
        self.instance = notices.instance.clone();
        notices.notify(conversation_id, Notice::TreeEdited(Arc::new(self)));
    }

    /// The `tree_update` that socket `socket` of this instance, `user_id`'s,
    /// shows for the edit: none on the socket it came from, which has
    /// answered already, nor on another user's.
    pub fn update_for(
        &self,
        notices: &Notices,
        socket: u64,
        user_id: &UserId,
    ) -> Option<ChatEvent> {
        let origin = self.instance == notices.instance && self.socket == socket;
        let mine = !origin && self.user_id == *user_id;
        mine.then(|| ChatEvent::TreeUpdate {
            patch: self.delta.clone(),
            version: self.version,
        })
    }
}

/// A notice as it travels on the bus.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Wire<T> {
    TurnStarted,
    TreeEdited(T),
}

pub struct Notices {
    watched: Mutex<HashMap<ConversationId, broadcast::Sender<Notice>>>,
    /// This instance's name, to tell its sockets from other instances'.
    instance: String,
    /// Notices to publish, in order.
    outbox: mpsc::UnboundedSender<(String, Bytes)>,
}

/// A socket's watch on one conversation; stops watching when dropped.
pub struct Watch {
    notices: Arc<Notices>,
    conversation_id: ConversationId,
    /// Always there until the watch is dropped.
    receiver: Option<broadcast::Receiver<Notice>>,
}

impl Notices {
    /// The news of `bus`: published from here, and heard from every
    /// instance from now on.
    pub async fn on_bus(bus: &Bus) -> Result<Arc<Self>, BusError> {
        bus.stream(&stream_spec()).await?;
        let (outbox, outgoing) = mpsc::unbounded_channel();
        let instance = confab_kit::ids::new_id("inst");
        let notices = Arc::new(Self {
            watched: Mutex::default(),
            instance: instance.clone(),
            outbox,
        });
        let from = bus.last_seq(STREAM).await? + 1;
        let mut incoming = bus.subscribe(STREAM, &format!("{STREAM}.>"), from).await?;
        tokio::spawn(publish_in_order(bus.clone(), instance, outgoing));
        let weak = Arc::downgrade(&notices);
        tokio::spawn(async move {
            while let Some(message) = incoming.next().await {
                let Some(notices) = weak.upgrade() else {
                    return;
                };
                match message {
                    Ok(message) => notices.heard(&message.subject, &message.payload),
                    Err(err) => {
                        tracing::warn!(error = %err, "reading the conversations' news: waiting for the bus")
                    }
                }
            }
        });
        Ok(notices)
    }

    /// A notice from the bus, for this instance's sockets.
    fn heard(&self, subject: &str, payload: &[u8]) {
        let Some(conversation_id) = subject
            .strip_prefix(STREAM)
            .and_then(|s| s.strip_prefix('.'))
        else {
            return;
        };
        let notice = match serde_json::from_slice::<Wire<TreeEdited>>(payload) {
            Ok(Wire::TurnStarted) => Notice::TurnStarted,
            Ok(Wire::TreeEdited(edited)) => Notice::TreeEdited(Arc::new(edited)),
            Err(err) => {
                tracing::warn!(error = %err, "an unreadable notice skipped");
                return;
            }
        };
        let sender = self.lock().get(conversation_id).cloned();
        if let Some(sender) = sender {
            // Every receiver may have gone since: nobody to tell.
            let _ = sender.send(notice);
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ConversationId, broadcast::Sender<Notice>>> {
        // Every change is one insert or remove: nothing half-done to fear.
        self.watched
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts watching `conversation_id`.
    pub fn watch(self: &Arc<Self>, conversation_id: &ConversationId) -> Watch {
        let mut watched = self.lock();
        let receiver = watched
            .entry(conversation_id.clone())
            .or_insert_with(|| broadcast::Sender::new(NOTICES_PER_CONVERSATION))
            .subscribe();
        metrics::gauge!("chat_conversations_watched").set(watched.len() as f64);
        Watch {
            notices: self.clone(),
            conversation_id: conversation_id.clone(),
            receiver: Some(receiver),
        }
    }

    /// Tells the sockets on `conversation_id`, on every instance.
    pub fn notify(&self, conversation_id: &ConversationId, notice: Notice) {
        let wire = match &notice {
            Notice::TurnStarted => Wire::TurnStarted,
            Notice::TreeEdited(edited) => Wire::TreeEdited(edited.as_ref()),
        };
        match serde_json::to_vec(&wire) {
            Ok(payload) => {
                let subject = format!("{STREAM}.{conversation_id}");
                let _ = self.outbox.send((subject, Bytes::from(payload)));
            }
            Err(err) => tracing::error!(error = %err, "a notice could not be encoded"),
        }
    }

    /// The sockets watching `conversation_id`.
    pub fn watchers(&self, conversation_id: &ConversationId) -> usize {
        self.lock()
            .get(conversation_id)
            .map_or(0, broadcast::Sender::receiver_count)
    }
}

/// Hands the notices to the bus in order, each until it is taken (once:
/// by its number in this instance's news).
async fn publish_in_order(
    bus: Bus,
    instance: String,
    mut outgoing: mpsc::UnboundedReceiver<(String, Bytes)>,
) {
    let mut sent = 0u64;
    while let Some((subject, payload)) = outgoing.recv().await {
        sent += 1;
        bus.publish_until_taken(&subject, &format!("{instance}.{sent}"), payload)
            .await;
    }
}

impl Watch {
    pub fn conversation_id(&self) -> &ConversationId {
        &self.conversation_id
    }

    /// The next notice. `Lagged` when some were missed; never `Closed`
    /// while the watch lives (the channel is kept while it has a receiver).
    pub async fn next(&mut self) -> Result<Notice, broadcast::error::RecvError> {
        match self.receiver.as_mut() {
            Some(receiver) => receiver.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // Under the lock, so that a socket attaching meanwhile either finds
        // the channel before it is removed, or makes a new one after.
        let mut watched = self.notices.lock();
        drop(self.receiver.take());
        if watched
            .get(&self.conversation_id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            watched.remove(&self.conversation_id);
        }
        metrics::gauge!("chat_conversations_watched").set(watched.len() as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_watch_hears_only_its_conversation_and_the_last_one_out_removes_the_channel() {
        let notices = Notices::on_bus(&Bus::in_process()).await.unwrap();
        let mut a = notices.watch(&"conv-a".into());
        let b1 = notices.watch(&"conv-b".into());
        let b2 = notices.watch(&"conv-b".into());
        assert_eq!(notices.watchers(&"conv-b".into()), 2);
        notices.notify(&"conv-b".into(), Notice::TurnStarted);
        notices.notify(&"conv-a".into(), Notice::TurnStarted);
        assert!(matches!(a.next().await.unwrap(), Notice::TurnStarted));
        // b's notice was published first, a's after it: a has heard all it
        // will, and none of it was b's.
        assert!(a.receiver.as_mut().unwrap().try_recv().is_err(), "b's news");
        drop(b1);
        assert_eq!(notices.watchers(&"conv-b".into()), 1);
        drop(b2);
        assert!(!notices.lock().contains_key("conv-b"));
        notices.notify(&"conv-b".into(), Notice::TurnStarted);
    }
}
