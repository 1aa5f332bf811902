//! A turn's task from `message_start` to `done`: it reaches the agent
//! ([`super::call`]), follows the agent's task ([`super::follow`]), saves the
//! one reply ([`super::reply`]) and frees the conversation.

use std::sync::Arc;

use confab_protocol::chat::ChatEvent;

use super::log::TurnLog;
use super::reply::Reply;
use super::turn::{Emitter, Turn};
use crate::a2a::client::A2aError;

/// Starts the turn; its events are read from the log it returns.
pub fn start(turn: Turn) -> Arc<TurnLog> {
    let log = turn.claim.log.clone();
    tokio::spawn(turn.run());
    log
}

impl Turn {
    async fn run(self) {
        let in_flight = metrics::gauge!("chat_turns_in_flight");
        in_flight.increment(1);
        let log = self.claim.log.clone();
        self.run_to_end().await;
        log.end();
        in_flight.decrement(1);
    }

    async fn run_to_end(self) {
        let out = Emitter::new(self.claim.log.clone());
        let assistant_id = self.reply.id.to_string();
        out.emit(ChatEvent::MessageStart {
            conversation_id: self.conversation_id.to_string(),
            user_message_id: self.user_message.id.to_string(),
            message_id: assistant_id.clone(),
            agent_id: self.agent_id.to_string(),
        });

        let mut reply = Reply::default();
        match self.connect(&out).await {
            Err(err) => {
                reply.canceled = matches!(err, A2aError::Canceled);
                reply.failure = Some(err.to_string());
            }
            Ok((agent, stream)) => self.follow(&agent, stream, &mut reply, &out).await,
        }
        let usage = reply.usage;
        let status = self.save(reply, &out).await;
        // The conversation is free for the next turn before `done` goes
        // out, so a client that starts one as soon as it reads `done` is
        // never refused.
        self.claim.release().await;
        out.emit(ChatEvent::Done {
            message_id: assistant_id,
            conversation_id: self.conversation_id.to_string(),
            status,
            token_usage: usage,
        });
    }
}
