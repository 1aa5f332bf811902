//! gateway's integration tests, one binary: each module is one area, each
//! test starts the real services it needs on port 0.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

mod admin_users;
mod api_keys;
mod audit;
mod auth;
mod common;
mod console;
mod cookies;
mod health;
mod instances;
mod keep_alive;
mod openapi;
mod paths;
mod proxy;
mod secrets;
mod security;
mod seeds;
mod turn;
mod usage_budgets;
mod websocket;
