//! `/chat/agents`

pub mod list;
