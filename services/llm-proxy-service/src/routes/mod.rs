//! HTTP routes of llm-proxy-service.

pub mod budgets;
pub mod calls;
pub mod completions;
pub mod models;
pub mod traces;
pub mod usage;
pub mod users;
