//! The tasks an agent knows: kept in memory, the oldest forgotten past a
//! bound, each with the signal that cancels it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use confab_protocol::a2a::{Artifact, Part, Task, TaskState, TaskStatus};
use tokio::sync::Notify;

/// Tasks remembered per agent; past this the oldest are forgotten, so a busy
/// agent's memory stays bounded.
pub const RETAINED_TASKS: usize = 1000;

struct Entry {
    task: Task,
    cancel: Arc<Notify>,
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
        inner.tasks.insert(
            task.id.clone(),
            Entry {
                task,
                cancel: cancel.clone(),
            },
        );
        cancel
    }

    pub fn get(&self, id: &str) -> Option<Task> {
        self.lock().tasks.get(id).map(|e| e.task.clone())
    }

    pub fn set_status(&self, id: &str, status: TaskStatus) {
        if let Some(entry) = self.lock().tasks.get_mut(id) {
            entry.task.status = status;
        }
    }

    /// Adds streamed text to the task's answer artifact.
    pub fn append_text(&self, id: &str, artifact_id: &str, text: &str) {
        let mut inner = self.lock();
        let Some(entry) = inner.tasks.get_mut(id) else {
            return;
        };
        match entry
            .task
            .artifacts
            .iter_mut()
            .find(|a| a.artifact_id == artifact_id)
        {
            Some(artifact) => match artifact.parts.first_mut().and_then(|p| p.text.as_mut()) {
                Some(existing) => existing.push_str(text),
                None => artifact.parts.push(Part::text(text)),
            },
            None => entry.task.artifacts.push(Artifact {
                artifact_id: artifact_id.to_owned(),
                name: Some("answer".into()),
                description: None,
                parts: vec![Part::text(text)],
                metadata: None,
            }),
        }
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
