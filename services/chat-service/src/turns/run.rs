//! A turn's task from `message_start` to `done`: it reaches the agent
//! ([`super::call`]), follows the agent's task ([`super::follow`]), saves the
//! one reply ([`super::reply`]) and frees the conversation.

use std::sync::Arc;

use confab_protocol::chat::ChatEvent;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::log::TurnLog;
use super::reply::Reply;
use super::turn::{Emitter, Turn};
use crate::a2a::client::{A2aError, AgentStream, Endpoint};

/// Runs a turn's `work` unless another instance takes the turn over
/// meanwhile (see [`super::in_flight::InFlight::keep_instance`]): then it
/// stops where it is, saves nothing and sends no `done`; the new owner
/// does both.
async fn until_lost(lost: &CancellationToken, work: impl Future<Output = ()>) {
    tokio::select! {
        () = work => {}
        () = lost.cancelled() => {
            tracing::warn!("a turn taken over by another instance stopped here without saving");
        }
    }
}

/// Starts the turn; its events are read from the log it returns.
pub fn start(turn: Turn) -> Arc<TurnLog> {
    let log = turn.claim.log.clone();
    // The turn's span, a child of the request that started it (its task
    // outlives that request): the call to the agent and the reply's saving
    // are its children.
    let span = tracing::info_span!(
        "turn",
        otel.name = %format_args!("turn {}", turn.agent_id),
        gen_ai.conversation.id = %turn.conversation_id,
        gen_ai.agent.id = %turn.agent_id,
        confab.message_id = %turn.reply.id,
    );
    tokio::spawn(turn.run().instrument(span));
    log
}

impl Turn {
    async fn run(self) {
        let in_flight = metrics::gauge!("chat_turns_in_flight");
        in_flight.increment(1);
        let log = self.claim.log.clone();
        let lost = self.claim.lost.clone();
        until_lost(&lost, self.run_to_end()).await;
        log.end();
        in_flight.decrement(1);
    }

    async fn run_to_end(self) {
        let out = Emitter::new(self.claim.log.clone());
        out.emit(self.message_start());

        let mut reply = Reply::default();
        match self.connect(&out).await {
            Err(err) => {
                reply.canceled = matches!(err, A2aError::Canceled);
                reply.failure = Some(err.to_string());
            }
            Ok((agent, stream)) => self.follow(&agent, stream, &mut reply, &out).await,
        }
        self.finish(reply, &out).await;
    }

    /// Goes on with a turn whose instance died (see [`super::takeover`]):
    /// after the `earlier` events its first owner published, it picks the
    /// agent's task up again and finishes the same reply. `interrupted` when
    /// the task cannot be found any more.
    pub(super) async fn resume(self, earlier: Vec<ChatEvent>) {
        let in_flight = metrics::gauge!("chat_turns_in_flight");
        in_flight.increment(1);
        metrics::counter!("chat_turns_taken_over_total").increment(1);
        let log = self.claim.log.clone();
        let lost = self.claim.lost.clone();
        until_lost(&lost, self.resume_to_end(earlier)).await;
        log.end();
        in_flight.decrement(1);
    }

    async fn resume_to_end(self, earlier: Vec<ChatEvent>) {
        let out = Emitter::new(self.claim.log.clone());
        if earlier.is_empty() {
            // Nothing of it was kept (the bus lives in the process that
            // died): readers get the whole turn from its start again.
            out.emit(self.message_start());
        }
        let mut reply = Reply::rebuilt(&earlier, self.reply.agent_task_id.clone());
        match self.pick_up(&reply).await {
            Ok((agent, stream)) => self.follow(&agent, stream, &mut reply, &out).await,
            Err(reason) => {
                reply.failure = Some(reason);
                reply.interrupted = true;
            }
        }
        self.finish(reply, &out).await;
    }

    fn message_start(&self) -> ChatEvent {
        ChatEvent::MessageStart {
            conversation_id: self.conversation_id.to_string(),
            user_message_id: self.user_message.id.to_string(),
            message_id: self.reply.id.to_string(),
            agent_id: self.agent_id.to_string(),
        }
    }

    /// The agent's task of a turn taken over, subscribed to again.
    async fn pick_up(&self, reply: &Reply) -> Result<(Endpoint, AgentStream), String> {
        let Some(task_id) = &reply.task_id else {
            return Err(
                "the instance running this turn stopped before the agent's task was known".into(),
            );
        };
        let agent = self
            .agents
            .endpoint(self.agent_id.as_str())
            .await
            .map_err(|err| format!("the agent cannot be reached: {err}"))?;
        let stream = self
            .client
            .subscribe(&agent, task_id, &self.trace)
            .await
            .map_err(|err| format!("the agent's task could not be picked up again: {err}"))?;
        Ok((agent, stream))
    }

    /// Saves the reply, frees the conversation and sends `done`.
    async fn finish(self, reply: Reply, out: &Emitter) {
        let assistant_id = self.reply.id.to_string();
        let usage = reply.usage;
        let status = self.save(reply, out).await;
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
