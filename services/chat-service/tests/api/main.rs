//! chat-service's integration tests, one binary: each module is one area, each
//! test starts the real services it needs on port 0.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly on any unexpected error"
)]

mod agent_auth;
mod agent_chat;
mod agent_faults;
mod api;
mod bus_outage;
mod common;
mod conversations;
mod crash;
mod fuzz_ws;
mod instances;
mod internal;
mod limits;
mod openai;
mod openapi;
mod resume;
mod sessions;
mod tree_limits;
mod turns;
mod unified;
mod usage;
mod ws;
