//! HTTP routes of chat-service.

pub mod conversations;
