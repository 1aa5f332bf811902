//! HTTP routes of llm-proxy-service.

pub mod completions;
pub mod models;
