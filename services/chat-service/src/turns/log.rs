//! A turn's event log: every event of the turn with its sequence number
//! (1, 2, …), read by any number of subscribers (the SSE response that
//! started the turn, a client re-attaching with `Last-Event-ID`, WebSocket
//! tabs), each at its own pace.
//!
//! The events live on the bus (DESIGN §15), in the stream [`STREAM`], on
//! the subject of their conversation, so that a reader on any instance can
//! follow a turn, wherever it runs. Each message is a [`Envelope`]: the
//! turn (its reply's id), the event's number in the turn, and the event. A
//! reader starts from the stream's sequence just before the turn's first
//! event (or any before it) and keeps the events of its turn, up to
//! `done`. Readers on this instance read what it hears of the stream
//! ([`TurnEvents`]), in process.
//!
//! The turn only appends; it never waits for a reader or for the bus: its
//! events go to an ordered publisher ([`Bus::ordered_publisher`]) that
//! sends them in order, and again, until the bus has taken each one (in
//! process: at once). So a slow or gone client cannot hold a turn up, and a
//! bus outage delays the events but loses none (the reply itself is saved
//! in the database whatever the bus does).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use confab_kit::bus::{Bus, BusError, OrderedPublisher, StreamSpec};
use confab_protocol::chat::ChatEvent;
use confab_protocol::ids::{ConversationId, MessageId};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use super::events::TurnEvents;

/// The bus stream holding every turn's events.
pub const STREAM: &str = "turns";

/// The stream's settings: its subjects are `turns.<conversation id>`.
pub fn stream_spec(max_age: Duration, max_bytes: u64) -> StreamSpec {
    StreamSpec {
        name: STREAM.to_owned(),
        subjects: format!("{STREAM}.>"),
        max_age,
        max_bytes,
    }
}

fn subject(conversation_id: &ConversationId) -> String {
    format!("{STREAM}.{conversation_id}")
}

/// One event of a turn as it travels on the bus.
#[derive(Serialize, Deserialize)]
struct Envelope<E> {
    /// The turn: the id of its reply.
    turn: MessageId,
    /// The event's number in the turn: its SSE id.
    seq: u64,
    /// When it was logged (µs since the Unix epoch): readers count how long
    /// events take to reach them (`chat_turn_event_delivery_seconds`), on
    /// the bus or in process. Instances compare their clocks for this.
    #[serde(default)]
    at: u64,
    event: E,
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}

pub struct TurnLog {
    events: Arc<TurnEvents>,
    subject: String,
    turn: MessageId,
    /// The stream's last sequence before the turn began: its events come
    /// after it.
    start: u64,
    /// Events logged so far (the writer's count).
    logged: AtomicU64,
    ended: AtomicBool,
    /// The writer's publisher; gone once the turn has ended.
    publisher: Mutex<Option<OrderedPublisher>>,
}

impl TurnLog {
    /// The log of the turn whose reply is `turn`, written here: its events
    /// are numbered and published from this instance.
    pub fn open(
        events: &Arc<TurnEvents>,
        conversation_id: &ConversationId,
        turn: &MessageId,
    ) -> Arc<Self> {
        // Before any event of this turn: asking the bus for its last
        // sequence would cost a request per turn.
        let start = events.last_heard();
        Self::resume(events, conversation_id, turn, start, 0)
    }

    /// The log of a turn taken over from an instance that died: written
    /// here from now on, its events numbered on after the `logged` ones its
    /// first owner published (readers still start at `start`).
    pub fn resume(
        events: &Arc<TurnEvents>,
        conversation_id: &ConversationId,
        turn: &MessageId,
        start: u64,
        logged: u64,
    ) -> Arc<Self> {
        let subject = subject(conversation_id);
        let publisher = events.bus().ordered_publisher(&subject);
        Arc::new(Self {
            events: events.clone(),
            subject,
            turn: turn.clone(),
            start,
            logged: AtomicU64::new(logged),
            ended: AtomicBool::new(false),
            publisher: Mutex::new(Some(publisher)),
        })
    }

    /// The events a turn's log holds so far, when nobody writes to it any
    /// more (its instance died): read up to the subject's last message.
    pub async fn written(
        bus: &Bus,
        conversation_id: &ConversationId,
        turn: &MessageId,
        start: u64,
    ) -> Result<Vec<(u64, ChatEvent)>, BusError> {
        let subject = subject(conversation_id);
        let Some(last) = bus.last_seq_on(STREAM, &subject).await? else {
            return Ok(Vec::new());
        };
        let mut events = Vec::new();
        if last <= start {
            return Ok(events);
        }
        let mut messages = bus.subscribe(STREAM, &subject, start + 1).await?;
        while let Some(message) = messages.next().await {
            let message = message?;
            if let Ok(envelope) = serde_json::from_slice::<Envelope<ChatEvent>>(&message.payload)
                && envelope.turn == *turn
            {
                events.push((envelope.seq, envelope.event));
            }
            if message.seq >= last {
                break;
            }
        }
        Ok(events)
    }

    /// The log of a turn another instance writes, to read it.
    pub fn reader(
        events: &Arc<TurnEvents>,
        conversation_id: &ConversationId,
        turn: &MessageId,
        start: u64,
    ) -> Arc<Self> {
        Arc::new(Self {
            events: events.clone(),
            subject: subject(conversation_id),
            turn: turn.clone(),
            start,
            logged: AtomicU64::new(0),
            ended: AtomicBool::new(false),
            publisher: Mutex::new(None),
        })
    }

    /// The stream's last sequence before the turn's first event.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Logs the next event; returns its sequence number.
    pub fn push(&self, event: ChatEvent) -> u64 {
        let seq = self.logged.fetch_add(1, Ordering::SeqCst) + 1;
        let envelope = Envelope {
            turn: self.turn.clone(),
            seq,
            at: now_micros(),
            event: &event,
        };
        let payload = match serde_json::to_vec(&envelope) {
            Ok(payload) => Bytes::from(payload),
            Err(err) => {
                // A ChatEvent is plain data; this cannot happen.
                tracing::error!(error = %err, "a turn event could not be encoded");
                return seq;
            }
        };
        let publisher = self.publisher.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(publisher) = publisher.as_ref() {
            // Its turn and number: an attempt that timed out may have been
            // kept, and a retry must not be kept again.
            publisher.publish(format!("{}.{seq}", self.turn), payload);
        }
        seq
    }

    /// How many events are logged so far.
    pub fn len(&self) -> u64 {
        self.logged.load(Ordering::SeqCst)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the turn has ended (its last event, `done`, is logged).
    pub fn has_ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    /// No more events will come (the last was `done`); the publisher ends
    /// once it has handed the rest to the bus.
    pub fn end(&self) {
        self.ended.store(true, Ordering::SeqCst);
        self.publisher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    /// The events after `after` (0 for all), then each new one as it is
    /// logged, until the turn's `done`. Nothing is missed or repeated,
    /// whenever the reader joins.
    pub fn subscribe(&self, after: u64) -> impl Stream<Item = (u64, ChatEvent)> + Send + 'static {
        let heard = self.events.clone();
        let subject = self.subject.clone();
        let turn = self.turn.clone();
        let from = self.start + 1;
        let delivery = metrics::histogram!("chat_turn_event_delivery_seconds");
        let events = futures_util::stream::once(async move {
            if let Some(heard) = heard.follow(&subject, from) {
                return tokio_stream::wrappers::UnboundedReceiverStream::new(heard)
                    .map(Ok)
                    .boxed();
            }
            match heard.bus().subscribe(STREAM, &subject, from).await {
                Ok(messages) => messages,
                Err(err) => {
                    tracing::warn!(error = %err, subject, "reading a turn's events failed");
                    futures_util::stream::empty().boxed()
                }
            }
        })
        .flatten()
        .filter_map(move |message| {
            let event = match message {
                Ok(message) => {
                    match serde_json::from_slice::<Envelope<ChatEvent>>(&message.payload) {
                        Ok(envelope) if envelope.turn == turn => {
                            let took = now_micros().saturating_sub(envelope.at);
                            delivery.record(took as f64 / 1e6);
                            Some((envelope.seq, envelope.event))
                        }
                        Ok(_) => None,
                        Err(err) => {
                            tracing::warn!(error = %err, "an unreadable turn event skipped");
                            None
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "reading a turn's events: waiting for the bus");
                    None
                }
            };
            std::future::ready(event)
        })
        .boxed();
        // Up to and with `done`: nothing of this turn comes after it, and a
        // reader that has read it already ends at once. Each number once:
        // a turn taken over from an instance that was only cut off may have
        // had a few numbers written twice.
        futures_util::stream::unfold(Some((events, after)), move |reading| async move {
            let (mut events, mut after) = reading?;
            loop {
                let (seq, event) = events.next().await?;
                let done = matches!(event, ChatEvent::Done { .. });
                if seq > after {
                    after = seq;
                    return Some(((seq, event), (!done).then_some((events, after))));
                }
                if done {
                    return None;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str) -> ChatEvent {
        ChatEvent::Text { text: t.into() }
    }

    fn done() -> ChatEvent {
        ChatEvent::Done {
            message_id: "msg-2".into(),
            conversation_id: "conv-1".into(),
            status: confab_protocol::chat::MessageStatus::Complete,
            token_usage: None,
        }
    }

    async fn bus() -> Arc<TurnEvents> {
        let bus = Bus::in_process();
        bus.stream(&stream_spec(Duration::from_secs(60), 1 << 20))
            .await
            .unwrap();
        TurnEvents::hear(&bus).await.unwrap()
    }

    #[tokio::test]
    async fn a_late_reader_gets_the_rest_without_gap_or_duplicate() {
        let bus = bus().await;
        let log = TurnLog::open(&bus, &"conv-1".into(), &"msg-2".into());
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
                log.push(done());
                log.end();
            })
        };
        let early: Vec<(u64, ChatEvent)> = early.collect().await;
        let late: Vec<(u64, ChatEvent)> = late.collect().await;
        writer.await.unwrap();
        let seqs = |events: &[(u64, ChatEvent)]| events.iter().map(|(s, _)| *s).collect::<Vec<_>>();
        assert_eq!(seqs(&early), [1, 2, 3, 4, 5]);
        assert_eq!(seqs(&late), [2, 3, 4, 5]);
        assert_eq!(late[0].1, text("b"));
    }

    #[tokio::test]
    async fn reading_an_ended_log_replays_and_stops() {
        let bus = bus().await;
        let log = TurnLog::open(&bus, &"conv-1".into(), &"msg-2".into());
        log.push(text("a"));
        log.push(done());
        log.end();
        assert_eq!(log.subscribe(0).count().await, 2);
        assert_eq!(log.subscribe(2).count().await, 0);
    }

    #[tokio::test]
    async fn a_reader_sees_only_its_turn_though_another_shares_the_conversation() {
        let bus = bus().await;
        let first = TurnLog::open(&bus, &"conv-1".into(), &"msg-2".into());
        first.push(text("first"));
        first.push(done());
        first.end();
        let second = TurnLog::open(&bus, &"conv-1".into(), &"msg-4".into());
        second.push(text("second"));
        second.push(done());
        second.end();
        let events: Vec<_> = first.subscribe(0).collect().await;
        assert_eq!(events[0], (1, text("first")));
        assert_eq!(events.len(), 2);
        let events: Vec<_> = second.subscribe(0).collect().await;
        assert_eq!(events[0], (1, text("second")));
    }
}
