//! `/chat/conversations…`

pub mod cancel;
pub mod create;
pub mod messages;
pub mod stream;
