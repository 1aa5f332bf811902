//! HTTP routes of chat-service.

pub mod agents;
pub mod conversations;
pub mod internal;
pub mod one_turn;
pub mod openai;
pub mod seeds;
pub mod sse;
pub mod turn_refusals;
pub mod unified;
pub mod ws;

use confab_kit::auth::Caller;
use confab_protocol::ids::UserId;

/// The caller's id as the type the store and the turns take: kit's `Caller`
/// keeps a `String` because every service shares it.
pub trait CallerId {
    fn user(&self) -> UserId;
}

impl CallerId for Caller {
    fn user(&self) -> UserId {
        UserId::from(self.user_id.as_str())
    }
}
