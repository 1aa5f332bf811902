//! HTTP routes of llm-proxy-service.

pub mod calls;
pub mod completions;
pub mod models;
pub mod traces;
