//! The tasks an agent knows: kept in memory, the oldest forgotten past a
//! bound, each with the signal that cancels it and a fan-out of its stream
//! results to any number of subscribers (the caller that started it, and
//! any that re-subscribe later).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use confab_protocol::a2a::{Part, StreamResponse, Task, TaskArtifactUpdateEvent, TaskState};
use tokio::sync::{Notify, broadcast};

/// Tasks remembered per agent; past this the oldest are forgotten, so a busy
/// agent's memory stays bounded.
pub const RETAINED_TASKS: usize = 1000;

/// Stream results a subscriber may fall behind by before it is cut off (it
/// can re-subscribe and gets the task's snapshot).
const SUBSCRIBER_BUFFER: usize = 1024;

struct Entry {
    task: Task,
    cancel: Arc<Notify>,
    events: broadcast::Sender<StreamResponse>,
}

#[derive(Default)]
struct Inner {
    tasks: HashMap<String, Entry>,
    order: VecDeque<String>,
}

#[derive(Default)]
pub struct TaskStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum CancelError {
    NotFound,
    /// The task already ended.
    NotCancelable,
}

impl TaskStore {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Remembers a new task; returns the signal its run listens to.
    pub fn insert(&self, task: Task) -> Arc<Notify> {
        let cancel = Arc::new(Notify::new());
        let mut inner = self.lock();
        while inner.order.len() >= RETAINED_TASKS {
            if let Some(oldest) = inner.order.pop_front() {
                inner.tasks.remove(&oldest);
            }
        }
        inner.order.push_back(task.id.clone());
        let (events, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        inner.tasks.insert(
            task.id.clone(),
            Entry {
                task,
                cancel: cancel.clone(),
                events,
            },
        );
        cancel
    }

    /// The task as it is now and its results from now on, taken together so
    /// that nothing is missed or seen twice.
    pub fn subscribe(&self, id: &str) -> Option<(Task, broadcast::Receiver<StreamResponse>)> {
        let inner = self.lock();
        let entry = inner.tasks.get(id)?;
        Some((entry.task.clone(), entry.events.subscribe()))
    }

    /// Records a stream result in the task and sends it to every subscriber.
    pub fn publish(&self, id: &str, response: StreamResponse) {
        let mut inner = self.lock();
        let Some(entry) = inner.tasks.get_mut(id) else {
            return;
        };
        match &response {
            StreamResponse::Task(task) => entry.task.status = task.status.clone(),
            StreamResponse::StatusUpdate(update) => {
                entry.task.status = update.status.clone();
                // The usage of the final update stays with the task, for a
                // client that reads the task instead of its stream's end.
                if let Some(metadata) = &update.metadata {
                    entry
                        .task
                        .metadata
                        .get_or_insert_default()
                        .extend(metadata.clone());
                }
            }
            StreamResponse::ArtifactUpdate(update) => record_artifact(&mut entry.task, update),
            StreamResponse::Message(_) => {}
        }
        // No subscriber is fine: the task goes on without listeners.
        let _ = entry.events.send(response);
    }

    pub fn get(&self, id: &str) -> Option<Task> {
        self.lock().tasks.get(id).map(|e| e.task.clone())
    }

    /// Asks a running task to stop; its run ends it `canceled`.
    pub fn cancel(&self, id: &str) -> Result<Task, CancelError> {
        let inner = self.lock();
        let entry = inner.tasks.get(id).ok_or(CancelError::NotFound)?;
        if entry.task.status.state.is_terminal() {
            return Err(CancelError::NotCancelable);
        }
        // A stored permit: the run sees it even if it is not waiting yet.
        entry.cancel.notify_one();
        let mut task = entry.task.clone();
        task.status.state = TaskState::Canceled;
        Ok(task)
    }
}

/// Keeps an artifact update in the task, so a snapshot (`GetTask`,
/// `SubscribeToTask`) carries every artifact: streamed text joined into one
/// text part, other parts (the tree agent's patch) as they came.
fn record_artifact(task: &mut Task, update: &TaskArtifactUpdateEvent) {
    let incoming = &update.artifact;
    match task
        .artifacts
        .iter_mut()
        .find(|a| a.artifact_id == incoming.artifact_id)
    {
        Some(artifact) if update.append => {
            for part in &incoming.parts {
                match (artifact.parts.last_mut(), &part.text) {
                    (
                        Some(Part {
                            text: Some(existing),
                            ..
                        }),
                        Some(text),
                    ) => existing.push_str(text),
                    _ => artifact.parts.push(part.clone()),
                }
            }
        }
        Some(artifact) => *artifact = incoming.clone(),
        None => task.artifacts.push(incoming.clone()),
    }
}
