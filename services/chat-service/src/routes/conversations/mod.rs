//! `/chat/conversations…`

pub mod create;
pub mod messages;
pub mod stream;
