//! Every turn's events as this instance hears them from the bus: one
//! subscription to the whole [`STREAM`] per instance, handed out in process
//! to the readers of each conversation (SSE responses, re-attaching
//! clients, WebSocket followers).
//!
//! A reader used to have a bus subscription of its own, from its turn's
//! start: on NATS a consumer made and fed by the server per reader. Under a
//! burst of a thousand turns those creations queued behind each other in
//! the server and events took seconds to arrive. Now the server sends each
//! event once per instance, and a reader costs a map entry. The stream is
//! read through a [`Tap`]: on the in-process bus the publishing turn hands
//! each event to its readers itself, with no listening task woken per event
//! in between (issue 20).
//!
//! The last [`MAX_KEPT`] events are kept, so that a reader that joins a
//! little late (the response that started the turn, a socket told that a
//! turn started) gets what it missed from memory. A reader whose start was
//! let go already (a client resuming a long turn after a while) reads the
//! bus itself, as before.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use confab_kit::bus::{Bus, BusError, Message, Tap};
use tokio::sync::mpsc;

use super::log::STREAM;

/// Events kept for late readers, across conversations: about 15 s of a
/// thousand turns streaming at once (4,000 events/s), a few MiB.
pub const MAX_KEPT: usize = 1 << 16;

/// How many events between two sweeps of conversations nobody reads any
/// more.
const SWEEP_EVERY: u64 = 1024;

/// The turns' events on this instance.
pub struct TurnEvents {
    bus: Bus,
    heard: Mutex<Heard>,
    /// The stream read into `heard` while this lives.
    tap: std::sync::OnceLock<Tap>,
}

#[derive(Default)]
struct Heard {
    /// No event at or below this sequence is kept here: the subscription
    /// began after it, or it was let go.
    gone: u64,
    /// The last sequence heard.
    last: u64,
    /// The events kept, oldest first, by sequence and subject.
    order: VecDeque<(u64, Arc<str>)>,
    subjects: HashMap<Arc<str>, Subject>,
    /// Events heard since the last sweep.
    since_sweep: u64,
}

#[derive(Default)]
struct Subject {
    /// Its events still kept, oldest first.
    kept: VecDeque<(u64, Bytes)>,
    /// Where its readers read. Unbounded: a reader holds at most one
    /// turn's events (the bus subscription it replaces buffered as much).
    readers: Vec<mpsc::UnboundedSender<Message>>,
}

impl TurnEvents {
    /// Hears every turn event published on `bus` from now on, for as long
    /// as the returned value lives.
    pub async fn hear(bus: &Bus) -> Result<Arc<Self>, BusError> {
        let last = bus.last_seq(STREAM).await?;
        let events = Arc::new(Self {
            bus: bus.clone(),
            heard: Mutex::new(Heard {
                gone: last,
                last,
                ..Heard::default()
            }),
            tap: std::sync::OnceLock::new(),
        });
        let heard = Arc::downgrade(&events);
        let tap = bus
            .tap(STREAM, &format!("{STREAM}.>"), last + 1, move |message| {
                if let Some(events) = heard.upgrade() {
                    events.heard(message);
                }
            })
            .await?;
        let _ = events.tap.set(tap);
        Ok(events)
    }

    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    fn lock(&self) -> MutexGuard<'_, Heard> {
        // Every change leaves the maps whole: an event is either in or out.
        self.heard
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The last sequence heard: a turn that begins now has its events
    /// after it.
    pub fn last_heard(&self) -> u64 {
        self.lock().last
    }

    /// The events on `subject` from sequence `from` on, the kept ones first
    /// and then each as it is heard; `None` when some of them were let go
    /// already (read them from the bus instead).
    pub fn follow(&self, subject: &str, from: u64) -> Option<mpsc::UnboundedReceiver<Message>> {
        let mut heard = self.lock();
        if from <= heard.gone {
            return None;
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        let subject: Arc<str> = subject.into();
        let entry = heard.subjects.entry(subject.clone()).or_default();
        for (seq, payload) in entry.kept.iter().filter(|(seq, _)| *seq >= from) {
            let _ = sender.send(Message {
                subject: subject.clone(),
                seq: *seq,
                payload: payload.clone(),
            });
        }
        entry.readers.push(sender);
        Some(receiver)
    }

    /// An event from the bus: to its subject's readers, and kept.
    fn heard(&self, message: &Message) {
        let mut heard = self.lock();
        let heard = &mut *heard;
        if message.seq <= heard.last {
            // Heard already.
            return;
        }
        heard.last = message.seq;
        let subject = message.subject.clone();
        let entry = heard.subjects.entry(subject.clone()).or_default();
        entry.kept.push_back((message.seq, message.payload.clone()));
        entry
            .readers
            .retain(|reader| reader.send(message.clone()).is_ok());
        heard.order.push_back((message.seq, subject));
        while heard.order.len() > MAX_KEPT {
            let Some((seq, subject)) = heard.order.pop_front() else {
                break;
            };
            heard.gone = seq;
            if let Some(entry) = heard.subjects.get_mut(&subject) {
                entry.kept.pop_front();
            }
        }
        heard.since_sweep += 1;
        if heard.since_sweep >= SWEEP_EVERY {
            heard.since_sweep = 0;
            heard.subjects.retain(|_, entry| {
                entry.readers.retain(|reader| !reader.is_closed());
                !entry.kept.is_empty() || !entry.readers.is_empty()
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn bus() -> Bus {
        let bus = Bus::in_process();
        bus.stream(&super::super::log::stream_spec(
            Duration::from_secs(60),
            1 << 20,
        ))
        .await
        .unwrap();
        bus
    }

    async fn next(receiver: &mut mpsc::UnboundedReceiver<Message>) -> (u64, Bytes) {
        let message = tokio::time::timeout(Duration::from_secs(10), receiver.recv())
            .await
            .expect("an event in time")
            .expect("an open channel");
        (message.seq, message.payload)
    }

    #[tokio::test]
    async fn a_reader_gets_its_conversations_kept_events_then_the_new_ones() {
        let bus = bus().await;
        let before = bus
            .publish("turns.c1", Bytes::from("before"))
            .await
            .unwrap();
        let events = TurnEvents::hear(&bus).await.unwrap();
        assert_eq!(events.last_heard(), before);
        // Before the instance heard: not kept here.
        assert!(events.follow("turns.c1", before).is_none());
        let first = bus.publish("turns.c1", Bytes::from("a")).await.unwrap();
        bus.publish("turns.c2", Bytes::from("other")).await.unwrap();
        let second = bus.publish("turns.c1", Bytes::from("b")).await.unwrap();
        while events.last_heard() < second {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut late = events.follow("turns.c1", first + 1).unwrap();
        let mut all = events.follow("turns.c1", first).unwrap();
        let third = bus.publish("turns.c1", Bytes::from("c")).await.unwrap();
        assert_eq!(next(&mut all).await, (first, Bytes::from("a")));
        assert_eq!(next(&mut all).await, (second, Bytes::from("b")));
        assert_eq!(next(&mut all).await, (third, Bytes::from("c")));
        assert_eq!(next(&mut late).await, (second, Bytes::from("b")));
        assert_eq!(next(&mut late).await, (third, Bytes::from("c")));
    }

    #[tokio::test]
    async fn events_let_go_are_read_from_the_bus_instead() {
        let bus = bus().await;
        let events = TurnEvents::hear(&bus).await.unwrap();
        let first = bus.publish("turns.c1", Bytes::from("a")).await.unwrap();
        let mut last = first;
        for _ in 0..MAX_KEPT {
            last = bus.publish("turns.c2", Bytes::new()).await.unwrap();
        }
        while events.last_heard() < last {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(events.follow("turns.c1", first).is_none(), "let go");
        assert!(events.follow("turns.c1", first + 1).is_some());
        let heard = events.lock();
        assert_eq!(heard.order.len(), MAX_KEPT);
        assert!(
            heard
                .subjects
                .get("turns.c1")
                .is_none_or(|c1| c1.kept.is_empty())
        );
    }
}
