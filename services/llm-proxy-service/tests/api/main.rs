//! llm-proxy-service's integration tests, one binary: each module is one area, each
//! test starts the real services it needs on port 0.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly on any unexpected error"
)]

mod budget_requests;
mod budgets;
mod bus_outage;
mod common;
mod completions;
mod cost;
mod history;
mod interrupted;
mod openapi;
mod recording;
mod traces;
mod upstream;
mod usage;
