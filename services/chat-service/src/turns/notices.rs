//! News of one conversation for the chat sockets attached to it: a turn
//! started there (by any client), its tree edited over one of them.
//!
//! Each watched conversation has its own broadcast channel, made when the
//! first socket attaches and removed when the last one leaves, so a socket
//! wakes only for its own conversation and news of a conversation nobody
//! watches costs a map lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use confab_protocol::chat::ChatEvent;
use confab_protocol::ids::{ConversationId, UserId};
use serde_json::Value;

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
#[derive(Debug)]
pub struct TreeEdited {
    /// The socket the edit came from (which answers it directly).
    pub socket: u64,
    pub user_id: UserId,
    pub delta: Value,
    pub version: i64,
}

impl TreeEdited {
    /// Tells the sockets on `conversation_id` about the edit.
    pub fn announce(self, notices: &Notices, conversation_id: &ConversationId) {
        notices.notify(conversation_id, Notice::TreeEdited(Arc::new(self)));
    }

    /// The `tree_update` that socket `socket` of `user_id` shows for the
    /// edit: none on the socket it came from, which has answered already,
    /// nor on another user's.
    pub fn update_for(&self, socket: u64, user_id: &UserId) -> Option<ChatEvent> {
        let mine = self.socket != socket && self.user_id == *user_id;
        mine.then(|| ChatEvent::TreeUpdate {
            patch: self.delta.clone(),
            version: self.version,
        })
    }
}

#[derive(Default)]
pub struct Notices {
    watched: Mutex<HashMap<ConversationId, broadcast::Sender<Notice>>>,
}

/// A socket's watch on one conversation; stops watching when dropped.
pub struct Watch {
    notices: Arc<Notices>,
    conversation_id: ConversationId,
    /// Always there until the watch is dropped.
    receiver: Option<broadcast::Receiver<Notice>>,
}

impl Notices {
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

    /// Tells the sockets on `conversation_id`, if any.
    pub fn notify(&self, conversation_id: &ConversationId, notice: Notice) {
        let sender = self.lock().get(conversation_id).cloned();
        if let Some(sender) = sender {
            // Every receiver may have gone since: nobody to tell.
            let _ = sender.send(notice);
        }
    }

    /// The sockets watching `conversation_id`.
    pub fn watchers(&self, conversation_id: &ConversationId) -> usize {
        self.lock()
            .get(conversation_id)
            .map_or(0, broadcast::Sender::receiver_count)
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
        let notices = Arc::new(Notices::default());
        let mut a = notices.watch(&"conv-a".into());
        let b1 = notices.watch(&"conv-b".into());
        let b2 = notices.watch(&"conv-b".into());
        assert_eq!(notices.watchers(&"conv-b".into()), 2);
        notices.notify(&"conv-b".into(), Notice::TurnStarted);
        notices.notify(&"conv-a".into(), Notice::TurnStarted);
        assert!(matches!(a.next().await.unwrap(), Notice::TurnStarted));
        assert!(a.receiver.as_mut().unwrap().try_recv().is_err(), "b's news");
        drop(b1);
        assert_eq!(notices.watchers(&"conv-b".into()), 1);
        drop(b2);
        assert!(!notices.lock().contains_key("conv-b"));
        notices.notify(&"conv-b".into(), Notice::TurnStarted);
    }
}
