//! `GET /ws/chat`: a chat session over a WebSocket, in two dialects
//! (DESIGN §9).

mod compact;
mod connect;
mod envelope;
mod session;
mod tree_edit;

pub use connect::chat;
