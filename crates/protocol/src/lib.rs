//! Wire types shared by the Confab services.
//!
//! Everything here is plain data with serde derives: no I/O, no web framework.
//! Services parse requests into these types at the edge and encode responses
//! from them, so two services never disagree about a field name.

pub mod a2a;
pub mod auth;
pub mod budget;
pub mod chat;
pub mod error;
pub mod ids;
pub mod openai;
pub mod trace;
pub mod ws;
