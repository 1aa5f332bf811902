//! A turn's event log: every event of the turn with its sequence number
//! (1, 2, …), read by any number of subscribers (the SSE response that
//! started the turn, a client re-attaching with `Last-Event-ID`, WebSocket
//! tabs), each at its own pace.
//!
//! The turn only appends; it never waits for a reader, so a slow or gone
//! client cannot hold a turn up. What a turn logs is bounded by the turn
//! itself (its reply), and the log goes when the turn and its last reader
//! are done.

use std::sync::{Arc, Mutex, MutexGuard};

use confab_protocol::chat::ChatEvent;
use futures_util::Stream;
use tokio::sync::watch;

#[derive(Default)]
struct Entries {
    events: Vec<ChatEvent>,
    ended: bool,
}

pub struct TurnLog {
    entries: Mutex<Entries>,
    /// The number of events logged so far, for readers waiting for more.
    logged: watch::Sender<u64>,
}

impl Default for TurnLog {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
            logged: watch::Sender::new(0),
        }
    }
}

impl TurnLog {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Logs the next event; returns its sequence number.
    pub fn push(&self, event: ChatEvent) -> u64 {
        let seq = {
            let mut entries = self.lock();
            entries.events.push(event);
            entries.events.len() as u64
        };
        self.logged.send_replace(seq);
        seq
    }

    /// How many events are logged so far.
    pub fn len(&self) -> u64 {
        self.lock().events.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the turn has ended (its last event, `done`, is logged).
    pub fn has_ended(&self) -> bool {
        self.lock().ended
    }

    /// No more events will come (the last was `done`).
    pub fn end(&self) {
        self.lock().ended = true;
        self.logged.send_modify(|_| {});
    }

    /// The events after `after` (0 for all), then each new one as it is
    /// logged, until the turn has ended and everything was read. Nothing is
    /// missed or repeated, whenever the reader joins.
    pub fn subscribe(
        self: &Arc<Self>,
        after: u64,
    ) -> impl Stream<Item = (u64, ChatEvent)> + Send + 'static {
        let log = self.clone();
        let changes = self.logged.subscribe();
        futures_util::stream::unfold(
            (log, changes, after),
            |(log, mut changes, mut read)| async move {
                loop {
                    // Marks what is logged now as seen before looking, so
                    // an event logged after the look wakes the wait below.
                    changes.borrow_and_update();
                    let (next, ended) = {
                        let entries = log.lock();
                        let index = usize::try_from(read).unwrap_or(usize::MAX);
                        (entries.events.get(index).cloned(), entries.ended)
                    };
                    if let Some(event) = next {
                        read += 1;
                        return Some(((read, event), (log, changes, read)));
                    }
                    if ended {
                        return None;
                    }
                    if changes.changed().await.is_err() {
                        return None;
                    }
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn text(t: &str) -> ChatEvent {
        ChatEvent::Text { text: t.into() }
    }

    #[tokio::test]
    async fn a_late_reader_gets_the_rest_without_gap_or_duplicate() {
        let log = Arc::new(TurnLog::default());
        log.push(text("a"));
        log.push(text("b"));
        let early = log.subscribe(0);
        let late = log.subscribe(1);
        let writer = {
            let log = log.clone();
            tokio::spawn(async move {
                for t in ["c", "d"] {
                    tokio::task::yield_now().await;
                    log.push(text(t));
                }
                log.end();
            })
        };
        let early: Vec<(u64, ChatEvent)> = early.collect().await;
        let late: Vec<(u64, ChatEvent)> = late.collect().await;
        writer.await.unwrap();
        let seqs = |events: &[(u64, ChatEvent)]| events.iter().map(|(s, _)| *s).collect::<Vec<_>>();
        assert_eq!(seqs(&early), [1, 2, 3, 4]);
        assert_eq!(seqs(&late), [2, 3, 4]);
        assert_eq!(late[0].1, text("b"));
    }

    #[tokio::test]
    async fn reading_an_ended_log_replays_and_stops() {
        let log = Arc::new(TurnLog::default());
        log.push(text("a"));
        log.end();
        assert_eq!(log.subscribe(0).count().await, 1);
        assert_eq!(log.subscribe(1).count().await, 0);
    }
}
