//! Per-user caps on things a user keeps open (DESIGN §14): chat sockets,
//! trace subscribers, turns in flight.
//!
//! A [`UserSlots`] counts, per user, the [`UserSlot`]s taken and not yet
//! dropped; taking one more than the limit is refused. The slot gives its
//! place back when it is dropped, so whoever holds it (a socket's task, a
//! running turn) releases it however it ends, a panic included. A user
//! holding nothing takes no memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Places per user, up to a limit.
#[derive(Debug)]
pub struct UserSlots {
    /// Most slots one user may hold; 0: no limit.
    limit: usize,
    held: Mutex<HashMap<String, usize>>,
}

/// One place held by a user, given back on drop.
#[derive(Debug)]
pub struct UserSlot {
    slots: Arc<UserSlots>,
    user_id: String,
}

impl UserSlots {
    /// At most `limit` slots per user; 0 turns the limit off (slots are
    /// still counted).
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            held: Mutex::default(),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        // A count is updated in one step; a poisoned lock holds no half-done
        // change, so keep going.
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for `user_id`, or `None` when they hold `limit` already.
    pub fn take(self: &Arc<Self>, user_id: &str) -> Option<UserSlot> {
        let mut held = self.lock();
        let count = held.entry(user_id.to_owned()).or_default();
        if self.limit > 0 && *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(UserSlot {
            slots: self.clone(),
            user_id: user_id.to_owned(),
        })
    }

    /// The slots `user_id` holds now.
    pub fn held(&self, user_id: &str) -> usize {
        self.lock().get(user_id).copied().unwrap_or(0)
    }
}

impl UserSlot {
    pub fn user_id(&self) -> &str {
        &self.user_id
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut held = self.slots.lock();
        if let Some(count) = held.get_mut(&self.user_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_holds_at_most_the_limit_and_a_dropped_slot_is_given_back() {
        let slots = UserSlots::new(2);
        let first = slots.take("usr-a").unwrap();
        let _second = slots.take("usr-a").unwrap();
        assert!(slots.take("usr-a").is_none());
        assert!(
            slots.take("usr-b").is_some(),
            "another user is not affected"
        );
        drop(first);
        assert_eq!(slots.held("usr-a"), 1);
        assert!(slots.take("usr-a").is_some());
    }

    #[test]
    fn a_user_who_holds_nothing_is_forgotten() {
        let slots = UserSlots::new(0);
        let held: Vec<_> = (0..100).map(|_| slots.take("usr-a").unwrap()).collect();
        assert_eq!(slots.held("usr-a"), 100, "0 is no limit");
        drop(held);
        assert!(slots.lock().is_empty());
    }
}
