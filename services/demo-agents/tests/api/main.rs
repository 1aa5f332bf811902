//! demo-agents's integration tests, one binary: each module is one area, each
//! test starts the real services it needs on port 0.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

mod common;
mod fuzz_rpc;
mod security;
mod tasks;
mod tree;
mod usage;
mod versions;
