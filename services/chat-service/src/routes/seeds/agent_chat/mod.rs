//! Seed 003's agent dashboard: `/chat/agent/chat…` (the gateway's
//! `/api/v1/agent/chat…`). A session is a conversation.
//!
//! - `POST /chat/agent/chat` `{message, session_id?, agent_id?}` runs one
//!   turn and answers when it is over ([`chat`]);
//! - `POST /chat/agent/chat/stream`, the same body, streams it as SSE
//!   ([`stream`]);
//! - `GET /chat/agent/chat/history/{session_id}?limit=` ([`history`]).
//!
//! `session_id` continues that conversation (404 when it is not the
//! caller's); without it a conversation is created, with `agent_id` when
//! given, else the agent whose skills match the message, else the default
//! one, as `/chat/unified` picks. Fields the seed sends that Confab has no
//! use for (`character_id`) and any other unknown field are ignored.

pub mod chat;
pub mod history;
pub mod request;
pub mod stream;

use confab_kit::api::Routes;

/// The routes below `/chat/agent/chat`.
pub fn routes(r: &mut Routes<'_>) {
    r.post("", chat::chat)
        .post("/stream", stream::stream)
        .get("/history/{session_id}", history::history);
}
