//! Live trace events: the hub that numbers and fans them out, and the
//! WebSocket that streams them to the people debugging an agent.

pub mod hub;
pub mod ws;
