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
pub mod in_flight;
pub mod log;
pub mod notices;
mod tree;

use std::sync::Arc;
use std::time::Duration;

use confab_kit::db::Db;
use confab_protocol::a2a::confab::{ConfabMetadata, HistoryTurn, TreePatchPart};
use confab_protocol::a2a::{Message as A2aMessage, Part, Role, SendMessageRequest, TaskState};
use confab_protocol::chat::{ChatEvent, EventError, MessageStatus, TokenUsage};
use futures_util::StreamExt;
use rand::Rng;
use serde_json::{Value, json};

use crate::a2a::client::{A2aClient, A2aError, AgentEvent, AgentStream, Endpoint, Trace};
use crate::a2a::registry::Registry;
use crate::domain::MessageText;
use crate::store::messages::{self, Finished};
use crate::store::models::MessageRow;
use crate::tree_patch::TreeLimits;
use crate::turns::in_flight::TurnClaim;
use crate::turns::log::TurnLog;

/// Times a turn picks its agent's task up again after the stream dropped.
const MAX_RESUBSCRIPTIONS: u32 = 3;

/// How long a canceled turn waits for the agent to confirm on its stream
/// that the task ended; an agent that does not is left behind.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// How often and how patiently a turn tries to reach its agent.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
}

impl RetryPolicy {
    /// The wait after failed attempt `n` (1-based): base × 2^(n-1), ±20 %
    /// so that many turns failing at once do not retry in lockstep.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exact = self.base.saturating_mul(1 << (attempt - 1).min(16));
        let jitter = rand::thread_rng().gen_range(0.8..=1.2);
        exact.mul_f64(jitter)
    }
}

/// Everything a turn needs, gathered by the handler after validation.
pub struct Turn {
    pub db: Db,
    pub client: A2aClient,
    pub user_id: String,
    pub conversation_id: String,
    pub agent_id: String,
    pub agents: Arc<Registry>,
    /// This turn's hold on its conversation, and its cancel signal.
    pub claim: TurnClaim,
    pub user_message: MessageRow,
    /// The assistant message begun for this turn (in flight).
    pub reply: MessageRow,
    pub text: MessageText,
    /// Earlier messages, oldest first, sent to the agent as context.
    pub history: Vec<MessageRow>,
    /// Request id and trace context, passed on to the agent.
    pub trace: Trace,
    /// The conversation's tree document, for agents that edit it.
    pub tree: Value,
    /// What an agent's `tree_patch` may do to the tree.
    pub tree_limits: TreeLimits,
    pub retry: RetryPolicy,
}

/// Starts the turn; its events are read from the log it returns.
pub fn start(turn: Turn) -> Arc<TurnLog> {
    let log = turn.claim.log.clone();
    tokio::spawn(turn.run());
    log
}

/// Where a turn's events go.
struct Emitter {
    log: Arc<TurnLog>,
}

impl Emitter {
    fn emit(&self, event: ChatEvent) {
        self.log.push(event);
    }
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
        let out = Emitter {
            log: self.claim.log.clone(),
        };
        let assistant_id = self.reply.id.clone();
        out.emit(ChatEvent::MessageStart {
            conversation_id: self.conversation_id.clone(),
            user_message_id: self.user_message.id.clone(),
            message_id: assistant_id.clone(),
            agent_id: self.agent_id.clone(),
        });

        let mut reply = Reply::default();
        match self.connect(&out).await {
            Err(err) => {
                reply.canceled = matches!(err, A2aError::Canceled);
                reply.failure = Some(err.to_string());
            }
            Ok((agent, stream)) => self.follow(&agent, stream, &mut reply, &out).await,
        }
        let status = reply.status();
        if let (Some(reason), false) = (&reply.failure, status == MessageStatus::Canceled) {
            tracing::warn!(conversation_id = %self.conversation_id, agent = %self.agent_id, reason, "turn did not complete");
            out.emit(ChatEvent::Error {
                error: EventError {
                    code: if status == MessageStatus::Failed {
                        "agent_failed"
                    } else {
                        "agent_incomplete"
                    }
                    .into(),
                    message: reason.clone(),
                },
            });
        }

        let usage = reply.usage;
        let persisted = messages::finish(
            &self.db,
            &self.user_id,
            &assistant_id,
            reply.finished(status),
        )
        .await;
        let status = match persisted {
            Ok(true) => status,
            Ok(false) => {
                // The conversation was deleted while the turn ran.
                tracing::info!(conversation_id = %self.conversation_id, "conversation gone before the reply was saved");
                status
            }
            Err(err) => {
                tracing::error!(conversation_id = %self.conversation_id, error = %err, "saving the assistant message failed");
                out.emit(ChatEvent::Error {
                    error: EventError {
                        code: "persist_failed".into(),
                        message: "the reply could not be saved".into(),
                    },
                });
                MessageStatus::Failed
            }
        };
        // The conversation is free for the next turn before `done` goes
        // out, so a client that starts one as soon as it reads `done` is
        // never refused.
        drop(self.claim);
        out.emit(ChatEvent::Done {
            message_id: assistant_id,
            conversation_id: self.conversation_id.clone(),
            status,
            token_usage: usage,
        });
    }

    /// Reads the agent's results into `reply` until its task ends, picking
    /// the task up again when the stream drops, and canceling it when asked.
    async fn follow(
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
                    if reply.task_id.is_none() && reply.canceled {
                        // Canceled while the task was being created.
                        self.cancel_agent_task(agent, Some(&task_id)).await;
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
    /// instead and announced as `tree_update` with the tree's new version
    /// (or, when it does not apply, an `error`, the tree unchanged).
    async fn data(&self, data: Value, reply: &mut Reply, out: &Emitter) {
        reply.data.push(data.clone());
        let Some(TreePatchPart { tree_patch: patch }) = TreePatchPart::read(&data) else {
            out.emit(ChatEvent::Data { data });
            return;
        };
        let applied = tree::apply(
            &self.db,
            &self.user_id,
            &self.conversation_id,
            &patch,
            self.tree_limits,
        )
        .await;
        match applied {
            Ok(version) => out.emit(ChatEvent::TreeUpdate { patch, version }),
            Err(refused) => {
                tracing::warn!(conversation_id = %self.conversation_id, code = refused.code, message = %refused.message, "tree patch refused");
                out.emit(ChatEvent::Error {
                    error: EventError {
                        code: refused.code.into(),
                        message: refused.message,
                    },
                });
            }
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

    /// Calls the agent, retrying what is worth retrying before the first
    /// event and telling the client about each retry. A cancel during the
    /// attempts ends them.
    async fn connect(&self, out: &Emitter) -> Result<(Endpoint, AgentStream), A2aError> {
        let mut attempt = 1;
        loop {
            let result = tokio::select! {
                result = self.attempt() => result,
                _ = self.claim.cancel.cancelled() => return Err(A2aError::Canceled),
            };
            match result {
                Err(err) if err.is_retryable() && attempt < self.retry.max_attempts => {
                    let delay = self.retry.delay(attempt);
                    tracing::info!(agent = %self.agent_id, attempt, error = %err, "agent call failed; retrying");
                    attempt += 1;
                    out.emit(ChatEvent::Retry {
                        attempt,
                        max_attempts: self.retry.max_attempts,
                        delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.claim.cancel.cancelled() => return Err(A2aError::Canceled),
                    }
                }
                other => return other,
            }
        }
    }

    /// One attempt: find out how to speak to the agent (its card, cached),
    /// then send the message.
    async fn attempt(&self) -> Result<(Endpoint, AgentStream), A2aError> {
        let agent = self.agents.endpoint(&self.agent_id).await?;
        let stream = self
            .client
            .send_streaming(&agent, self.a2a_request(), &self.trace)
            .await?;
        Ok((agent, stream))
    }

    /// The A2A request: the user's text, the conversation as `contextId`, and
    /// the `confab` metadata of DESIGN §8.
    fn a2a_request(&self) -> SendMessageRequest {
        let history = self
            .history
            .iter()
            .filter(|m| !m.content.is_empty())
            .map(|m| HistoryTurn {
                role: m.role.clone(),
                content: m.content.clone(),
            })
            .collect();
        let confab = ConfabMetadata {
            user_id: Some(self.user_id.clone()),
            conversation_id: Some(self.conversation_id.clone()),
            history,
            tree: Some(self.tree.clone()),
        };
        SendMessageRequest {
            message: A2aMessage {
                message_id: self.user_message.id.clone(),
                context_id: Some(self.conversation_id.clone()),
                task_id: None,
                role: Role::User,
                parts: vec![Part::text(self.text.as_str())],
                metadata: None,
            },
            configuration: None,
            metadata: Some(confab.into_metadata()),
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

/// The assistant message as it builds up during a turn.
#[derive(Default)]
struct Reply {
    content: String,
    /// The agent's data parts, in order.
    data: Vec<Value>,
    task_id: Option<String>,
    usage: Option<TokenUsage>,
    /// Why the turn did not complete, if it did not.
    failure: Option<String>,
    final_state: Option<TaskState>,
    canceled: bool,
}

impl Reply {
    fn text(&mut self, text: String, out: &Emitter) {
        self.content.push_str(&text);
        out.emit(ChatEvent::Text { text });
    }

    fn status(&self) -> MessageStatus {
        let nothing = self.content.is_empty() && self.data.is_empty();
        match (&self.failure, self.final_state) {
            (None, _) => MessageStatus::Complete,
            (Some(_), Some(TaskState::Canceled)) => MessageStatus::Canceled,
            (Some(_), _) if self.canceled => MessageStatus::Canceled,
            (Some(_), _) if nothing => MessageStatus::Failed,
            (Some(_), _) => MessageStatus::Incomplete,
        }
    }

    fn finished(self, status: MessageStatus) -> Finished {
        let mut blocks = Vec::new();
        if !self.content.is_empty() {
            blocks.push(json!({"type": "text", "text": self.content}));
        }
        blocks.extend(
            self.data
                .into_iter()
                .map(|data| json!({"type": "data", "data": data})),
        );
        Finished {
            content: self.content,
            content_blocks: Value::Array(blocks),
            status,
            token_usage: self.usage,
            agent_task_id: self.task_id,
        }
    }
}
