//! `/internal/…`: what the other services ask of chat-service, with the
//! service token alone (never a user's token); one handler per file.

pub mod delete_user;
