//! The seeds' own forms of the chat API (issue 17, "the seeds' frontends,
//! unchanged"): where a seed's client speaks a shape that differs from the
//! native one, it is served here on the seed's own path, by the native
//! handlers wherever the shapes agree. The native API is unchanged.
//!
//! - [`sessions`]: seed 000's chat playground, `/chat/sessions…` (the
//!   gateway's `/api/chat/sessions…`).
//! - [`agent_chat`]: seed 003's agent dashboard, `/chat/agent/chat…` (the
//!   gateway's `/api/v1/agent/chat…`).
//!
//! Seeds 001 (the compact WebSocket dialect), 002 (`/chat/unified`) and 004
//! (the envelope dialect) are served by the native routes themselves.

pub mod agent_chat;
pub mod sessions;
