//! HTTP routes of chat-service.

pub mod agents;
pub mod conversations;
pub mod one_turn;
pub mod openai;
pub mod seeds;
pub mod sse;
pub mod unified;
pub mod ws;
