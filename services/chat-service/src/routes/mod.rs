//! HTTP routes of chat-service.

pub mod agents;
pub mod conversations;
pub mod sse;
