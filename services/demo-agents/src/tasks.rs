//! The tasks an agent knows: kept in memory, the oldest ended ones forgotten
//! past a bound (a running task is never forgotten: its callers are still
//! reading it), each with the signal that cancels it and a fan-out of its
//! stream results to any number of subscribers (the caller that started it,
//! and any that re-subscribe later). Running tasks are bounded too: past
//! `[limits] max_running_tasks` a new one is refused ([`Busy`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use confab_protocol::a2a::{
    Message, Part, Role, StreamResponse, Task, TaskArtifactUpdateEvent, TaskState, TaskStatus,
    TaskStatusUpdateEvent,
};
use tokio::sync::{Notify, broadcast};

/// Tasks remembered per agent; past this the oldest ended ones are
/// forgotten, so a busy agent's memory stays bounded. Running tasks are
/// bounded by the store's own limit, not by this.
pub const RETAINED_TASKS: usize = 1000;

/// Stream results a subscriber may fall behind by before it is cut off (it
/// can re-subscribe and gets the task's snapshot). The channel holds this
/// many slots per running task; results are shared (`Arc`), so a slot is a
/// pointer.
const SUBSCRIBER_BUFFER: usize = 256;

struct Entry {
    task: Task,
    cancel: Arc<Notify>,
    /// Gone once the task has ended: nothing more will be sent, and the
    /// channel's buffer is freed when its last reader is done.
    events: Option<broadcast::Sender<Arc<StreamResponse>>>,
    /// Whether the task counts against the running limit: from its start
    /// until it ends or waits for the client (a terminal or interrupted
    /// state, [`TaskState::ends_stream`]).
    running: bool,
}

#[derive(Default)]
struct Inner {
    tasks: HashMap<String, Entry>,
    order: VecDeque<String>,
    /// Entries with `running` set.
    running: usize,
}

impl Inner {
    /// Forgets the oldest task that has ended, if any has.
    fn forget_oldest_ended(&mut self) {
        let ended = self.order.iter().position(|id| {
            self.tasks
                .get(id)
                .is_none_or(|e| e.task.status.state.is_terminal())
        });
        if let Some(index) = ended
            && let Some(id) = self.order.remove(index)
        {
            self.tasks.remove(&id);
        }
    }
}

pub struct TaskStore {
    inner: Mutex<Inner>,
    max_running: usize,
}

/// A new task refused: `running` tasks are running, the limit is `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub running: usize,
    pub limit: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum CancelError {
    NotFound,
    /// The task already ended.
    NotCancelable,
}

impl TaskStore {
    /// A store that runs at most `max_running` tasks at once.
    pub fn new(max_running: usize) -> Self {
        Self {
            inner: Mutex::default(),
            max_running,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Remembers a new, running task and returns the signal its run listens
    /// to; or refuses it, remembering nothing, when the limit of running
    /// tasks is reached. Counted and inserted under one lock, so concurrent
    /// requests cannot overshoot the limit.
    pub fn try_insert(&self, task: Task) -> Result<Arc<Notify>, Busy> {
        let mut inner = self.lock();
        if inner.running >= self.max_running {
            return Err(Busy {
                running: inner.running,
                limit: self.max_running,
            });
        }
        let cancel = Arc::new(Notify::new());
        let running = !task.status.state.ends_stream();
        inner.running += usize::from(running);
        if inner.order.len() >= RETAINED_TASKS {
            inner.forget_oldest_ended();
        }
        inner.order.push_back(task.id.clone());
        let (events, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        inner.tasks.insert(
            task.id.clone(),
            Entry {
                task,
                cancel: cancel.clone(),
                events: Some(events),
                running,
            },
        );
        Ok(cancel)
    }

    /// Tasks running now.
    pub fn running(&self) -> usize {
        self.lock().running
    }

    /// The task as it is now and its results from now on, taken together so
    /// that nothing is missed or seen twice.
    pub fn subscribe(&self, id: &str) -> Option<(Task, broadcast::Receiver<Arc<StreamResponse>>)> {
        let inner = self.lock();
        let entry = inner.tasks.get(id)?;
        let live = match &entry.events {
            Some(events) => events.subscribe(),
            // Ended: a receiver whose sender is already gone, closed at once.
            None => broadcast::channel(1).1,
        };
        Some((entry.task.clone(), live))
    }

    /// Records a stream result in the task and sends it to every subscriber.
    pub fn publish(&self, id: &str, response: StreamResponse) {
        let mut guard = self.lock();
        let inner = &mut *guard;
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
        let ended =
            matches!(&response, StreamResponse::StatusUpdate(u) if u.status.state.is_terminal());
        if let Some(events) = &entry.events {
            // No subscriber is fine: the task goes on without listeners.
            let _ = events.send(Arc::new(response));
        }
        if ended {
            entry.events = None;
        }
        let running = !entry.task.status.state.ends_stream();
        if running != entry.running {
            entry.running = running;
            if running {
                inner.running += 1;
            } else {
                inner.running -= 1;
            }
        }
    }

    /// Ends a task that is still running as `failed`, for a run that
    /// stopped without saying how the task ended (it panicked, or the
    /// runtime dropped it): the task's readers get their final update, and
    /// it stops counting against the limit.
    pub fn fail_if_running(&self, id: &str, why: &str) {
        let context_id = match self.lock().tasks.get(id) {
            Some(entry) if entry.running => entry.task.context_id.clone(),
            _ => return,
        };
        self.publish(
            id,
            StreamResponse::StatusUpdate(TaskStatusUpdateEvent {
                task_id: id.to_owned(),
                context_id: context_id.clone(),
                status: TaskStatus {
                    state: TaskState::Failed,
                    message: Some(Message {
                        message_id: confab_kit::ids::new_id("msg"),
                        context_id: Some(context_id),
                        task_id: Some(id.to_owned()),
                        role: Role::Agent,
                        parts: vec![Part::text(why)],
                        metadata: None,
                    }),
                    timestamp: Some(chrono::Utc::now().to_rfc3339()),
                },
                metadata: None,
            }),
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str) -> Task {
        Task {
            id: id.into(),
            context_id: "c".into(),
            status: TaskStatus {
                state: TaskState::Working,
                message: None,
                timestamp: None,
            },
            artifacts: Vec::new(),
            history: Vec::new(),
            metadata: None,
        }
    }

    fn end(store: &TaskStore, id: &str) {
        store.publish(
            id,
            StreamResponse::StatusUpdate(TaskStatusUpdateEvent {
                task_id: id.into(),
                context_id: "c".into(),
                status: TaskStatus {
                    state: TaskState::Completed,
                    message: None,
                    timestamp: None,
                },
                metadata: None,
            }),
        );
    }

    #[test]
    fn running_tasks_are_never_forgotten_ended_ones_go_oldest_first() {
        let store = TaskStore::new(usize::MAX);
        for n in 0..RETAINED_TASKS + 10 {
            store.try_insert(task(&format!("t{n}"))).unwrap();
        }
        assert!(store.get("t0").is_some(), "running: kept past the bound");
        end(&store, "t5");
        end(&store, "t7");
        store.try_insert(task("new-1")).unwrap();
        assert!(store.get("t5").is_none(), "the oldest ended task goes");
        assert!(store.get("t7").is_some());
        assert!(store.get("t0").is_some());
        store.try_insert(task("new-2")).unwrap();
        assert!(store.get("t7").is_none());
    }

    #[test]
    fn subscribing_to_an_ended_task_gives_its_snapshot_and_a_closed_stream() {
        let store = TaskStore::new(1);
        store.try_insert(task("t")).unwrap();
        let (_, mut live) = store.subscribe("t").unwrap();
        end(&store, "t");
        assert!(live.try_recv().is_ok(), "the final update still arrives");
        let (snapshot, mut after) = store.subscribe("t").unwrap();
        assert_eq!(snapshot.status.state, TaskState::Completed);
        assert!(matches!(
            after.try_recv(),
            Err(broadcast::error::TryRecvError::Closed)
        ));
    }

    #[test]
    fn a_task_counts_as_running_until_it_ends_and_past_the_limit_none_starts() {
        let store = TaskStore::new(2);
        store.try_insert(task("a")).unwrap();
        store.try_insert(task("b")).unwrap();
        assert_eq!(
            store.try_insert(task("c")).err(),
            Some(Busy {
                running: 2,
                limit: 2
            })
        );
        assert!(store.get("c").is_none(), "a refused task is not kept");
        end(&store, "a");
        assert_eq!(store.running(), 1);
        store.try_insert(task("c")).unwrap();
        store.fail_if_running("b", "the run stopped");
        assert_eq!(store.get("b").unwrap().status.state, TaskState::Failed);
        store.fail_if_running("a", "already ended: left as it is");
        assert_eq!(store.get("a").unwrap().status.state, TaskState::Completed);
        assert_eq!(store.running(), 1);
    }
}
