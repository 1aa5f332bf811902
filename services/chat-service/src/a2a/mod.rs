//! chat-service's side of A2A: the agent registry and the client.

pub mod client;
pub mod registry;
pub mod select;
