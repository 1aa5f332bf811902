//! A chat turn: the agent call and its persistence, owned by the server.
//!
//! The turn runs in its own task. Its events go into its [`log::TurnLog`],
//! from which any number of clients read (and re-attach); if they all go
//! away the turn still runs to its end. Its reply row is written with the
//! user's message when the turn starts (in flight, not listed) and finished
//! when it ends, so every turn leaves exactly one assistant message, and one
//! cut off by a crash is found and marked `interrupted` at the next start.
//! Only a cancel stops a turn: the agent's task is canceled with
//! `CancelTask` and the message kept `canceled` with what had arrived.

pub mod begin;
pub mod budget;
mod call;
pub mod claims;
pub mod events;
mod follow;
pub mod in_flight;
pub mod llm_budget;
pub mod log;
pub mod notices;
mod reply;
mod retry;
mod run;
pub mod takeover;
mod turn;

pub use begin::TurnServices;
pub use retry::RetryPolicy;
pub use run::start;
pub use turn::Turn;
