//! Following the agent's task once it is reached: its results go into the
//! reply and out as events until the task ends; a dropped stream is picked
//! up again, and a cancel is passed on to the agent.

use std::time::Duration;

use confab_protocol::a2a::TaskState;
use confab_protocol::a2a::confab::TreePatchPart;
use confab_protocol::chat::ChatEvent;
use futures_util::StreamExt;
use serde_json::Value;

use super::reply::Reply;
use super::turn::{Emitter, Turn};
use crate::a2a::client::{AgentEvent, AgentStream, Endpoint};
use crate::store::messages;
use crate::trees;

/// Times a turn picks its agent's task up again after the stream dropped.
const MAX_RESUBSCRIPTIONS: u32 = 3;

/// How long a canceled turn waits for the agent to confirm on its stream
/// that the task ended; an agent that does not is left behind.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

impl Turn {
    /// Reads the agent's results into `reply` until its task ends, picking
    /// the task up again when the stream drops, and canceling it when asked.
    pub(super) async fn follow(
        &self,
        agent: &Endpoint,
        mut stream: AgentStream,
        reply: &mut Reply,
        out: &Emitter,
    ) {
        let mut resubscriptions = 0;
        let mut cancel_deadline: Option<tokio::time::Instant> = None;
        loop {
            let next = tokio::select! {
                _ = self.claim.cancel.cancelled(), if cancel_deadline.is_none() => {
                    reply.canceled = true;
                    cancel_deadline = Some(tokio::time::Instant::now() + CANCEL_GRACE);
                    // Without a task id yet, the cancel goes out when the
                    // task is announced (below); the deadline bounds the wait.
                    self.cancel_agent_task(agent, reply.task_id.as_deref()).await;
                    continue;
                }
                _ = sleep_until(cancel_deadline) => {
                    reply.failure = Some("canceled; the agent did not confirm in time".into());
                    return;
                }
                next = stream.next() => next,
            };
            let event = match next {
                Some(Ok(event)) => event,
                dropped => {
                    // The stream broke or ended before the task did: pick
                    // the task up again, a few times at most.
                    let reason = match dropped {
                        Some(Err(err)) => err.to_string(),
                        _ => "the agent's stream ended before the task finished".to_owned(),
                    };
                    let Some(id) = reply
                        .task_id
                        .clone()
                        .filter(|_| resubscriptions < MAX_RESUBSCRIPTIONS)
                    else {
                        reply.failure = Some(reason);
                        return;
                    };
                    resubscriptions += 1;
                    tracing::info!(task_id = %id, reason, "agent stream dropped; re-subscribing");
                    match self.client.subscribe(agent, &id, &self.trace).await {
                        Ok(again) => stream = again,
                        Err(err) => {
                            reply.failure = Some(format!("{reason}; re-subscribing failed: {err}"));
                            return;
                        }
                    }
                    continue;
                }
            };
            match event {
                AgentEvent::Task { task_id } => {
                    if reply.task_id.is_none() {
                        if reply.canceled {
                            // Canceled while the task was being created.
                            self.cancel_agent_task(agent, Some(&task_id)).await;
                        }
                        self.note_task(&task_id).await;
                    }
                    reply.task_id.get_or_insert(task_id);
                }
                AgentEvent::Snapshot { text, data } => {
                    // What the dropped stream missed, and only that.
                    if let Some(missed) = text
                        .strip_prefix(reply.content.as_str())
                        .filter(|m| !m.is_empty())
                    {
                        reply.text(missed.to_owned(), out);
                    }
                    for data in data.into_iter().skip(reply.data.len()) {
                        self.data(data, reply, out).await;
                    }
                }
                AgentEvent::Text(text) => reply.text(text, out),
                AgentEvent::Data(data) => self.data(data, reply, out).await,
                AgentEvent::Status { state, text, usage } => {
                    if usage.is_some() {
                        reply.usage = usage;
                    }
                    if state.is_terminal() {
                        if state != TaskState::Completed {
                            reply.failure =
                                Some(text.unwrap_or_else(|| format!("agent task ended {state:?}")));
                        }
                        reply.final_state = Some(state);
                        return;
                    }
                    if let Some(text) = text {
                        out.emit(ChatEvent::Reasoning { text });
                    }
                }
            }
        }
    }

    /// A structured part from the agent: kept with the reply, and passed
    /// on as `data`; a `tree_patch` is applied to the conversation's tree
    /// instead ([`trees::agent_patch`]).
    async fn data(&self, data: Value, reply: &mut Reply, out: &Emitter) {
        reply.data.push(data.clone());
        let event = match TreePatchPart::read(&data) {
            Some(TreePatchPart { tree_patch }) => {
                trees::agent_patch(
                    &self.db,
                    &self.user_id,
                    &self.conversation_id,
                    tree_patch,
                    self.tree_limits,
                )
                .await
            }
            None => ChatEvent::Data { data },
        };
        out.emit(event);
    }

    /// Writes the agent's task down with the reply in flight, so that
    /// another instance can pick it up if this one dies.
    async fn note_task(&self, task_id: &str) {
        if let Err(err) =
            messages::set_agent_task(&self.db, &self.user_id, &self.reply.id, task_id).await
        {
            tracing::warn!(task_id, error = %err, "noting the agent's task failed");
        }
    }

    /// Asks the agent to cancel its task; the task's own stream then ends
    /// it. A failed request is logged: the turn ends `canceled` regardless.
    async fn cancel_agent_task(&self, agent: &Endpoint, task_id: Option<&str>) {
        let Some(task_id) = task_id else { return };
        match self.client.cancel(agent, task_id, &self.trace).await {
            Ok(task) => {
                tracing::info!(task_id, state = ?task.status.state, "agent task canceled");
            }
            Err(err) => {
                tracing::warn!(task_id, error = %err, "canceling the agent task failed");
            }
        }
    }
}

/// Waits until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
