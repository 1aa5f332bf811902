//! What an agent does with a message: one LLM conversation through
//! llm-proxy-service, reported as A2A stream results.

use std::collections::BTreeMap;
use std::sync::Arc;

use confab_protocol::a2a::confab::{ConfabMetadata, TreePatchPart, UsageMetadata};
use confab_protocol::a2a::{
    Artifact, Message, Part, Role, StreamResponse, Task, TaskArtifactUpdateEvent, TaskState,
    TaskStatus, TaskStatusUpdateEvent,
};
use confab_protocol::chat::{Cost, MessageUsage};
use confab_protocol::openai::{ChatMessage, ToolCall, Usage};
use futures_util::StreamExt;
use serde_json::{Map, Value};
use tokio::sync::Notify;

use crate::auth::Authenticated;
use crate::kind::AgentKind;
use crate::llm::{Attribution, LlmClient, LlmEvent};
use crate::tasks::TaskStore;
use crate::tree::WorkingTree;

/// LLM rounds a task may take (each tool use is one more); a model that
/// keeps calling tools is stopped there.
const MAX_ROUNDS: usize = 5;

/// The `confab` object chat-service puts in the request metadata (DESIGN §8).
#[derive(Debug, Clone)]
pub struct ConfabContext {
    pub user_id: Option<String>,
    /// The personal API key of the turn, passed on like `user_id`.
    pub api_key_id: Option<String>,
    pub conversation_id: Option<String>,
    pub history: Vec<ChatMessage>,
    /// The conversation's tree (see `crate::tree` for its shape); the empty
    /// tree when chat-service sent none.
    pub tree: Value,
}

impl Default for ConfabContext {
    fn default() -> Self {
        Self {
            user_id: None,
            api_key_id: None,
            conversation_id: None,
            history: Vec::new(),
            tree: crate::tree::empty(),
        }
    }
}

impl ConfabContext {
    /// The context a request's metadata carries. Only an authenticated
    /// request's: its `user_id` and `api_key_id` are passed on to
    /// llm-proxy-service under the agent's own key, which attributes the
    /// calls to that user and key.
    pub fn from_metadata(_caller: Authenticated, metadata: Option<&Map<String, Value>>) -> Self {
        let Some(confab) = ConfabMetadata::read(metadata) else {
            return Self::default();
        };
        let history = confab
            .history
            .into_iter()
            .filter(|turn| matches!(turn.role.as_str(), "user" | "assistant"))
            .map(|turn| ChatMessage::new(&turn.role, turn.content))
            .collect();
        Self {
            user_id: confab.user_id,
            api_key_id: confab.api_key_id,
            conversation_id: confab.conversation_id,
            history,
            tree: confab.tree.unwrap_or_else(crate::tree::empty),
        }
    }
}

/// One task being worked on.
pub struct TaskRun {
    pub kind: AgentKind,
    pub tasks: Arc<TaskStore>,
    pub cancel: Arc<Notify>,
    pub task_id: String,
    pub context_id: String,
    pub message: Message,
    pub context: ConfabContext,
    pub traceparent: Option<String>,
}

impl TaskRun {
    /// Runs the task to its end, publishing every stream result to the
    /// task's subscribers. A subscriber going away does not stop it; only
    /// `CancelTask` does.
    pub async fn run(self, llm: LlmClient) {
        // However the run stops (a panic, the runtime going away), the task
        // ends, and stops counting as running.
        let _ended = EndsTask {
            tasks: self.tasks.clone(),
            task_id: self.task_id.clone(),
        };
        let publish = |response| self.tasks.publish(&self.task_id, response);
        publish(StreamResponse::Task(Task {
            id: self.task_id.clone(),
            context_id: self.context_id.clone(),
            status: self.status(TaskState::Working, None),
            artifacts: Vec::new(),
            history: vec![self.message.clone()],
            metadata: None,
        }));
        let mut messages = vec![ChatMessage::new("system", self.kind.system_prompt())];
        if self.kind == AgentKind::Tree {
            messages.push(ChatMessage::new(
                "system",
                format!("The conversation's tree: {}", self.context.tree),
            ));
        }
        // Tree tools edit this copy; what they changed is published as one
        // patch when the task completes.
        let mut tree = WorkingTree::new(self.context.tree.clone());
        messages.extend(self.context.history.iter().cloned());
        messages.push(ChatMessage::new("user", self.message.text()));
        let who = Attribution {
            agent_id: self.kind.name().to_owned(),
            user_id: self.context.user_id.clone(),
            api_key_id: self.context.api_key_id.clone(),
            conversation_id: self.context.conversation_id.clone(),
            traceparent: self.traceparent.clone(),
        };
        let artifact_id = format!("{}-answer", self.task_id);
        let tools = crate::tools::definitions(self.kind);
        let mut usage = None;
        // The sum of the calls' costs, `None` once one call's is unknown
        // (no price for its model, or no usage reported): a partial sum
        // would pass for the whole.
        let mut cost = Some(Cost::ZERO);
        let mut first = true;
        let work = async {
            for _ in 0..MAX_ROUNDS {
                let mut stream = Box::pin(llm.stream(messages.clone(), tools.clone(), &who).await?);
                let mut calls: BTreeMap<u32, ToolCall> = BTreeMap::new();
                let mut priced = false;
                while let Some(event) = stream.next().await {
                    match event? {
                        LlmEvent::Text(text) => {
                            let update = StreamResponse::ArtifactUpdate(TaskArtifactUpdateEvent {
                                task_id: self.task_id.clone(),
                                context_id: self.context_id.clone(),
                                artifact: Artifact {
                                    artifact_id: artifact_id.clone(),
                                    name: Some("answer".into()),
                                    description: None,
                                    parts: vec![Part::text(text)],
                                    metadata: None,
                                },
                                append: !first,
                                last_chunk: false,
                                metadata: None,
                            });
                            first = false;
                            publish(update);
                        }
                        LlmEvent::ToolCall(piece) => {
                            let call = calls
                                .entry(piece.index)
                                .or_insert_with(|| ToolCall::function("", "", ""));
                            if let Some(id) = piece.id {
                                call.id = id;
                            }
                            if let Some(function) = piece.function {
                                call.function
                                    .name
                                    .push_str(function.name.as_deref().unwrap_or_default());
                                call.function
                                    .arguments
                                    .push_str(function.arguments.as_deref().unwrap_or_default());
                            }
                        }
                        LlmEvent::Usage(u, call_cost) => {
                            let total = usage.get_or_insert(Usage::default());
                            *total = Usage::new(
                                total.prompt_tokens + u.prompt_tokens,
                                total.completion_tokens + u.completion_tokens,
                            );
                            priced = call_cost.is_some();
                            cost = cost.zip(call_cost).map(|(sum, c)| sum.saturating_add(c));
                        }
                    }
                }
                if !priced {
                    cost = None;
                }
                if calls.is_empty() {
                    return Ok(());
                }
                let calls: Vec<ToolCall> = calls.into_values().collect();
                messages.push(ChatMessage::assistant_tool_calls(calls.clone()));
                for call in calls {
                    let result = crate::tools::run(
                        self.kind,
                        &call.function.name,
                        &call.function.arguments,
                        &mut tree,
                    );
                    let note = format!(
                        "{}({}) → {result}",
                        call.function.name, call.function.arguments
                    );
                    publish(self.status_update(TaskState::Working, Some(note), None));
                    messages.push(ChatMessage::tool_result(&call.id, result));
                }
            }
            anyhow::bail!("the model was still calling tools after {MAX_ROUNDS} rounds")
        };
        // Cancel really stops the work: the LLM stream is dropped mid-way.
        let outcome: Option<anyhow::Result<()>> = tokio::select! {
            result = work => Some(result),
            _ = self.cancel.notified() => None,
        };
        let final_status = match outcome {
            None => self.status_update(TaskState::Canceled, Some("canceled".into()), None),
            Some(Ok(())) => {
                if !tree.patch().is_empty() {
                    publish(self.tree_patch(&tree));
                }
                let metadata = usage.map(|u| {
                    let usage = MessageUsage {
                        input_tokens: u.prompt_tokens,
                        output_tokens: u.completion_tokens,
                        cost,
                    };
                    UsageMetadata { usage }.into_metadata()
                });
                self.status_update(TaskState::Completed, None, metadata)
            }
            Some(Err(err)) => {
                tracing::warn!(task_id = %self.task_id, error = %format!("{err:#}"), "task failed");
                self.status_update(TaskState::Failed, Some(format!("{err:#}")), None)
            }
        };
        publish(final_status);
    }

    /// The task's tree edits as one artifact: a DataPart
    /// `{"tree_patch": [RFC 6902 ops]}` that applies to the tree the task
    /// was given (DESIGN §8).
    fn tree_patch(&self, tree: &WorkingTree) -> StreamResponse {
        // Operations hold only strings and JSON values, which always encode.
        let tree_patch = serde_json::to_value(tree.patch()).unwrap_or_default();
        StreamResponse::ArtifactUpdate(TaskArtifactUpdateEvent {
            task_id: self.task_id.clone(),
            context_id: self.context_id.clone(),
            artifact: Artifact {
                artifact_id: format!("{}-tree-patch", self.task_id),
                name: Some("tree_patch".into()),
                description: Some("JSON Patch (RFC 6902) of the conversation's tree".into()),
                parts: vec![Part::data(TreePatchPart { tree_patch }.into_data())],
                metadata: None,
            },
            append: false,
            last_chunk: true,
            metadata: None,
        })
    }

    fn status(&self, state: TaskState, text: Option<String>) -> TaskStatus {
        TaskStatus {
            state,
            message: text.map(|t| Message {
                message_id: confab_kit::ids::new_id("msg"),
                context_id: Some(self.context_id.clone()),
                task_id: Some(self.task_id.clone()),
                role: Role::Agent,
                parts: vec![Part::text(t)],
                metadata: None,
            }),
            timestamp: Some(chrono::Utc::now().to_rfc3339()),
        }
    }

    fn status_update(
        &self,
        state: TaskState,
        text: Option<String>,
        metadata: Option<Map<String, Value>>,
    ) -> StreamResponse {
        StreamResponse::StatusUpdate(TaskStatusUpdateEvent {
            task_id: self.task_id.clone(),
            context_id: self.context_id.clone(),
            status: self.status(state, text),
            metadata,
        })
    }
}

/// Fails its task, if the task has not ended, when dropped: the task's run
/// owns one for as long as it runs.
struct EndsTask {
    tasks: Arc<TaskStore>,
    task_id: String,
}

impl Drop for EndsTask {
    fn drop(&mut self) {
        self.tasks
            .fail_if_running(&self.task_id, "the agent stopped working on the task");
    }
}
