//! A chat turn: the agent call and its persistence, owned by the server.
//!
//! The turn runs in its own task. Its events go to the client through a
//! bounded channel; if the client goes away the turn still runs to its end
//! and persists exactly one assistant message.

use std::time::Duration;

use confab_kit::db::Db;
use confab_kit::ids::new_id;
use confab_protocol::a2a::{Message as A2aMessage, Part, Role, SendMessageRequest, TaskState};
use confab_protocol::chat::{ChatEvent, EventError, MessageRole, MessageStatus, TokenUsage};
use futures_util::StreamExt;
use rand::Rng;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::a2a::client::{A2aClient, A2aError, AgentEvent, AgentStream};
use crate::domain::MessageText;
use crate::store::messages;
use crate::store::models::{MessageRow, NewMessage};

/// Times a turn picks its agent's task up again after the stream dropped.
const MAX_RESUBSCRIPTIONS: u32 = 3;

/// Events buffered towards one client. When full, the turn waits for the
/// client; a client that has gone away no longer receives and never blocks.
const CLIENT_BUFFER: usize = 64;

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
    pub agent_url: String,
    pub user_message: MessageRow,
    pub text: MessageText,
    /// Earlier messages, oldest first, sent to the agent as context.
    pub history: Vec<MessageRow>,
    pub request_id: Option<String>,
    pub retry: RetryPolicy,
}

/// Starts the turn and returns its numbered events.
pub fn start(turn: Turn) -> mpsc::Receiver<(u64, ChatEvent)> {
    let (tx, rx) = mpsc::channel(CLIENT_BUFFER);
    tokio::spawn(turn.run(tx));
    rx
}

/// Sends numbered events to the client while it listens.
struct Emitter {
    tx: mpsc::Sender<(u64, ChatEvent)>,
    seq: u64,
    listening: bool,
}

impl Emitter {
    async fn emit(&mut self, event: ChatEvent) {
        self.seq += 1;
        if self.listening && self.tx.send((self.seq, event)).await.is_err() {
            self.listening = false;
        }
    }
}

impl Turn {
    async fn run(self, tx: mpsc::Sender<(u64, ChatEvent)>) {
        let in_flight = metrics::gauge!("chat_turns_in_flight");
        in_flight.increment(1);
        self.run_to_end(tx).await;
        in_flight.decrement(1);
    }

    async fn run_to_end(self, tx: mpsc::Sender<(u64, ChatEvent)>) {
        let mut out = Emitter {
            tx,
            seq: 0,
            listening: true,
        };
        let assistant_id = new_id("msg");
        out.emit(ChatEvent::MessageStart {
            conversation_id: self.conversation_id.clone(),
            user_message_id: self.user_message.id.clone(),
            message_id: assistant_id.clone(),
            agent_id: self.agent_id.clone(),
        })
        .await;

        let mut content = String::new();
        let mut data_blocks = Vec::new();
        let mut task_id: Option<String> = None;
        let mut usage: Option<TokenUsage> = None;
        let mut failure: Option<String> = None;
        let mut final_state = None;

        match self.connect(&mut out).await {
            Err(err) => failure = Some(err.to_string()),
            Ok(mut stream) => {
                let mut resubscriptions = 0;
                loop {
                    let event = match stream.next().await {
                        Some(Ok(event)) => event,
                        dropped => {
                            // The stream broke or ended before the task did:
                            // pick the task up again, a few times at most.
                            let reason = match dropped {
                                Some(Err(err)) => err.to_string(),
                                _ => "the agent's stream ended before the task finished".to_owned(),
                            };
                            match (&task_id, resubscriptions < MAX_RESUBSCRIPTIONS) {
                                (Some(id), true) => {
                                    resubscriptions += 1;
                                    tracing::info!(task_id = %id, reason, "agent stream dropped; re-subscribing");
                                    match self
                                        .client
                                        .subscribe(&self.agent_url, id, self.request_id.as_deref())
                                        .await
                                    {
                                        Ok(again) => {
                                            stream = again;
                                            continue;
                                        }
                                        Err(err) => {
                                            failure = Some(format!(
                                                "{reason}; re-subscribing failed: {err}"
                                            ));
                                        }
                                    }
                                }
                                _ => failure = Some(reason),
                            }
                            break;
                        }
                    };
                    match event {
                        AgentEvent::Task { task_id: id } => {
                            task_id.get_or_insert(id);
                        }
                        AgentEvent::Snapshot(answer) => {
                            // What the dropped stream missed, and only that.
                            if let Some(missed) = answer
                                .strip_prefix(content.as_str())
                                .filter(|m| !m.is_empty())
                            {
                                let text = missed.to_owned();
                                content.push_str(&text);
                                out.emit(ChatEvent::Text { text }).await;
                            }
                        }
                        AgentEvent::Text(text) => {
                            content.push_str(&text);
                            out.emit(ChatEvent::Text { text }).await;
                        }
                        AgentEvent::Data(data) => {
                            data_blocks.push(json!({"type": "data", "data": data.clone()}));
                            out.emit(ChatEvent::Data { data }).await;
                        }
                        AgentEvent::Status {
                            state,
                            text,
                            usage: u,
                        } => {
                            if u.is_some() {
                                usage = u;
                            }
                            if state.is_terminal() {
                                if state != TaskState::Completed {
                                    failure =
                                        Some(text.unwrap_or_else(|| {
                                            format!("agent task ended {state:?}")
                                        }));
                                }
                                final_state = Some(state);
                                break;
                            }
                            if let Some(text) = text {
                                out.emit(ChatEvent::Reasoning { text }).await;
                            }
                        }
                    }
                }
            }
        }

        let status = match (&failure, final_state) {
            (None, _) => MessageStatus::Complete,
            (Some(_), Some(TaskState::Canceled)) => MessageStatus::Canceled,
            (Some(_), _) if content.is_empty() && data_blocks.is_empty() => MessageStatus::Failed,
            (Some(_), _) => MessageStatus::Incomplete,
        };
        if let Some(reason) = &failure {
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
            })
            .await;
        }

        let mut blocks = Vec::new();
        if !content.is_empty() {
            blocks.push(json!({"type": "text", "text": content}));
        }
        blocks.extend(data_blocks);
        let assistant = NewMessage {
            id: assistant_id.clone(),
            role: MessageRole::Assistant,
            content,
            content_blocks: Value::Array(blocks),
            status,
            token_usage: usage,
            agent_task_id: task_id,
        };
        let persisted =
            messages::append(&self.db, &self.user_id, &self.conversation_id, assistant).await;
        let status = match persisted {
            Ok(Some(_)) => status,
            Ok(None) => {
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
                })
                .await;
                MessageStatus::Failed
            }
        };
        out.emit(ChatEvent::Done {
            message_id: assistant_id,
            conversation_id: self.conversation_id.clone(),
            status,
            token_usage: usage,
        })
        .await;
    }

    /// Calls the agent, retrying what is worth retrying before the first
    /// event, and telling the client about each retry.
    async fn connect(&self, out: &mut Emitter) -> Result<AgentStream, A2aError> {
        let mut attempt = 1;
        loop {
            let result = self
                .client
                .send_streaming(
                    &self.agent_url,
                    self.a2a_request(),
                    self.request_id.as_deref(),
                )
                .await;
            match result {
                Err(err) if err.is_retryable() && attempt < self.retry.max_attempts => {
                    let delay = self.retry.delay(attempt);
                    tracing::info!(agent = %self.agent_id, attempt, error = %err, "agent call failed; retrying");
                    attempt += 1;
                    out.emit(ChatEvent::Retry {
                        attempt,
                        max_attempts: self.retry.max_attempts,
                        delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    })
                    .await;
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }

    /// The A2A request: the user's text, the conversation as `contextId`, and
    /// the `confab` metadata of DESIGN §8.
    fn a2a_request(&self) -> SendMessageRequest {
        let history: Vec<Value> = self
            .history
            .iter()
            .filter(|m| !m.content.is_empty())
            .map(|m| json!({"role": m.role, "content": m.content}))
            .collect();
        let mut metadata = Map::new();
        metadata.insert(
            "confab".into(),
            json!({
                "user_id": self.user_id,
                "conversation_id": self.conversation_id,
                "history": history,
            }),
        );
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
            metadata: Some(metadata),
        }
    }
}
