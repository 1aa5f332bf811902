//! `GET /ws/chat`: a chat session over a WebSocket, in two dialects
//! (DESIGN §9).

mod compact;
pub mod connect;
mod envelope;
mod session;

pub use connect::chat;

/// Largest frame a client may send: room for a prompt of the default
/// longest length or a tree edit; a larger frame closes the socket with 1009.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
