//! The OpenAI chat-completions API of chat-service: `/chat/completions`,
//! `/chat/models`.

pub mod completions;
pub mod convert;
pub mod models;
