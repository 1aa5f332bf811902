//! The bus inside one process: what one instance needs, with the semantics
//! of the NATS side (the same tests run on both).
//!
//! A stream keeps its messages in memory, in one log and per subject, so a
//! subscriber to one subject (a conversation's turn, say) reads and is woken
//! by that subject's messages only, however many other subjects are busy.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc, oneshot};

use super::{
    BusError, Entry, Message, OnMessage, Reply, Request, Requests, StreamSpec, Subscription,
};

/// The in-process bus; clones share it.
#[derive(Clone, Default)]
pub struct LocalBus {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    streams: Mutex<Vec<Arc<LocalStream>>>,
    servers: Mutex<HashMap<String, Vec<mpsc::Sender<Request>>>>,
    buckets: Mutex<HashMap<String, LocalBucket>>,
}

/// Locks `mutex`; a panic elsewhere while holding it leaves data that is
/// still whole (every update here is one assignment or push), so go on.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct LocalStream {
    spec: Mutex<StreamSpec>,
    log: Mutex<Log>,
    /// Woken by every message, for wildcard subscribers.
    any: Notify,
}

#[derive(Default)]
struct Log {
    last_seq: u64,
    bytes: u64,
    messages: VecDeque<Stored>,
    subjects: HashMap<Arc<str>, SubjectLog>,
    /// The ids of `publish_once` within the deduplication window: their
    /// sequence numbers, and in the order they came, to forget them.
    ids: HashMap<Arc<str>, u64>,
    id_times: VecDeque<(Instant, Arc<str>)>,
    /// Called with each message as it is published ([`super::Bus::tap`]).
    taps: Vec<LocalTap>,
}

struct LocalTap {
    filter: String,
    on_message: OnMessage,
    /// Set when its [`super::Tap`] is dropped.
    stopped: Arc<AtomicBool>,
}

struct Stored {
    message: Message,
    at: Instant,
}

#[derive(Default)]
struct SubjectLog {
    messages: VecDeque<Message>,
    /// Woken by this subject's messages.
    notify: Arc<Notify>,
}

/// The most `publish_once` ids a stream remembers: a bound on memory. In
/// process a publish cannot half-succeed, so nothing here is ever retried
/// and the ids are kept only so both buses behave alike.
const IDS_KEPT: usize = 65_536;

/// Publishes between two sweeps of subjects nobody reads or keeps.
const SWEEP_EVERY: u64 = 1024;

impl Log {
    /// Forgets the subjects with no message kept and no subscriber (a
    /// subscriber holds its subject's `notify`).
    fn sweep(&mut self) {
        self.subjects.retain(|_, subject| {
            !subject.messages.is_empty() || Arc::strong_count(&subject.notify) > 1
        });
    }

    /// Forgets the ids older than `window`, and the oldest beyond
    /// [`IDS_KEPT`].
    fn forget_ids(&mut self, now: Instant, window: Duration) {
        while let Some((at, _)) = self.id_times.front() {
            if now.duration_since(*at) <= window && self.id_times.len() < IDS_KEPT {
                break;
            }
            if let Some((_, id)) = self.id_times.pop_front() {
                self.ids.remove(&id);
            }
        }
    }

    /// Drops what the stream no longer keeps, oldest first.
    fn trim(&mut self, max_age: Duration, max_bytes: u64, now: Instant) {
        while let Some(oldest) = self.messages.front() {
            let too_old = now.duration_since(oldest.at) > max_age;
            if !too_old && self.bytes <= max_bytes {
                break;
            }
            let Some(oldest) = self.messages.pop_front() else {
                break;
            };
            self.bytes -= oldest.message.payload.len() as u64;
            let subject = &*oldest.message.subject;
            if let Some(log) = self.subjects.get_mut(subject) {
                log.messages.pop_front();
                if log.messages.is_empty() && Arc::strong_count(&log.notify) == 1 {
                    self.subjects.remove(subject);
                }
            }
        }
    }
}

impl LocalBus {
    pub(super) fn stream(&self, spec: &StreamSpec) {
        let mut streams = lock(&self.inner.streams);
        match streams
            .iter()
            .find(|stream| lock(&stream.spec).name == spec.name)
        {
            Some(stream) => *lock(&stream.spec) = spec.clone(),
            None => streams.push(Arc::new(LocalStream {
                spec: Mutex::new(spec.clone()),
                log: Mutex::default(),
                any: Notify::new(),
            })),
        }
    }

    fn find(&self, predicate: impl Fn(&StreamSpec) -> bool) -> Option<Arc<LocalStream>> {
        lock(&self.inner.streams)
            .iter()
            .find(|stream| predicate(&lock(&stream.spec)))
            .cloned()
    }

    fn named(&self, name: &str) -> Result<Arc<LocalStream>, BusError> {
        self.find(|spec| spec.name == name)
            .ok_or_else(|| BusError::NoStream(name.to_owned()))
    }

    /// Publishes; with an `id`, once per id within the deduplication
    /// window.
    pub(super) fn publish_once(
        &self,
        subject: &str,
        id: Option<&str>,
        payload: Bytes,
    ) -> Result<u64, BusError> {
        let stream = self
            .find(|spec| super::matches(&spec.subjects, subject))
            .ok_or_else(|| BusError::NoStream(subject.to_owned()))?;
        let (max_age, max_bytes) = {
            let spec = lock(&stream.spec);
            (spec.max_age, spec.max_bytes)
        };
        let now = Instant::now();
        let mut log = lock(&stream.log);
        if let Some(id) = id {
            log.forget_ids(now, super::DEDUPLICATION_WINDOW.min(max_age));
            if let Some(&seq) = log.ids.get(id) {
                return Ok(seq);
            }
            let seq = log.last_seq + 1;
            let id: Arc<str> = id.into();
            log.ids.insert(id.clone(), seq);
            log.id_times.push_back((now, id));
        }
        log.last_seq += 1;
        let subject: Arc<str> = match log.subjects.get_key_value(subject) {
            Some((known, _)) => known.clone(),
            None => subject.into(),
        };
        let message = Message {
            subject: subject.clone(),
            seq: log.last_seq,
            payload,
        };
        log.bytes += message.payload.len() as u64;
        log.taps.retain(|tap| !tap.stopped.load(Ordering::Acquire));
        for tap in &log.taps {
            if super::matches(&tap.filter, &message.subject) {
                (tap.on_message)(&message);
            }
        }
        let subject_log = log.subjects.entry(subject).or_default();
        subject_log.messages.push_back(message.clone());
        subject_log.notify.notify_waiters();
        log.messages.push_back(Stored { message, at: now });
        log.trim(max_age, max_bytes, now);
        if log.last_seq % SWEEP_EVERY == 0 {
            log.sweep();
        }
        let seq = log.last_seq;
        drop(log);
        stream.any.notify_waiters();
        Ok(seq)
    }

    pub(super) fn last_seq(&self, stream: &str) -> Result<u64, BusError> {
        Ok(lock(&self.named(stream)?.log).last_seq)
    }

    pub(super) fn continue_after(&self, stream: &str, seq: u64) -> Result<(), BusError> {
        let stream = self.named(stream)?;
        let mut log = lock(&stream.log);
        if log.last_seq < seq {
            // As NATS's purge does: what was kept goes, numbering goes on.
            log.messages.clear();
            log.bytes = 0;
            for subject in log.subjects.values_mut() {
                subject.messages.clear();
            }
            log.sweep();
            log.last_seq = seq;
        }
        Ok(())
    }

    pub(super) fn last_seq_on(&self, stream: &str, subject: &str) -> Result<Option<u64>, BusError> {
        let stream = self.named(stream)?;
        let log = lock(&stream.log);
        Ok(log
            .subjects
            .get(subject)
            .and_then(|subject| subject.messages.back())
            .map(|last| last.seq))
    }

    pub(super) fn subscribe(
        &self,
        stream: &str,
        filter: &str,
        from: u64,
    ) -> Result<Subscription, BusError> {
        let stream = self.named(stream)?;
        let filter = filter.to_owned();
        let exact = !filter.split('.').any(|token| token == "*" || token == ">");
        let state = (stream, filter, from.max(1), VecDeque::new());
        Ok(futures_util::stream::unfold(
            state,
            move |(stream, filter, mut next, mut ready)| async move {
                loop {
                    if let Some(message) = ready.pop_front() {
                        return Some((Ok(message), (stream, filter, next, ready)));
                    }
                    // The subject's own wake-ups for one subject; every
                    // message's for a wildcard.
                    let subject_notify = if exact {
                        let mut log = lock(&stream.log);
                        let subject = log.subjects.entry(filter.as_str().into()).or_default();
                        let first = subject.messages.partition_point(|m| m.seq < next);
                        ready.extend(subject.messages.range(first..).cloned());
                        Some(Arc::clone(&subject.notify))
                    } else {
                        let log = lock(&stream.log);
                        let first = log.messages.partition_point(|m| m.message.seq < next);
                        ready.extend(
                            log.messages
                                .range(first..)
                                .filter(|stored| super::matches(&filter, &stored.message.subject))
                                .map(|stored| stored.message.clone()),
                        );
                        // Nothing up to the last one matched: skip past it.
                        next = next.max(log.last_seq + 1);
                        None
                    };
                    if let Some(last) = ready.back() {
                        next = last.seq + 1;
                        continue;
                    }
                    // Registered before the log is read again, so a message
                    // published in between still wakes it.
                    let notified = match &subject_notify {
                        Some(notify) => notify.notified(),
                        None => stream.any.notified(),
                    };
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    if !ready_since(&stream, &filter, exact, next) {
                        notified.await;
                    }
                }
            },
        )
        .boxed())
    }

    /// Calls `on_message` with what `stream` keeps on `filter` from `from`
    /// on, then, from inside [`Self::publish_once`], with each new message:
    /// under the stream's lock, so in sequence order, none missed or seen
    /// twice.
    pub(super) fn tap(
        &self,
        stream: &str,
        filter: &str,
        from: u64,
        on_message: OnMessage,
    ) -> Result<Arc<AtomicBool>, BusError> {
        let stream = self.named(stream)?;
        let mut log = lock(&stream.log);
        let first = log.messages.partition_point(|m| m.message.seq < from);
        for stored in log.messages.range(first..) {
            if super::matches(filter, &stored.message.subject) {
                on_message(&stored.message);
            }
        }
        let stopped = Arc::new(AtomicBool::new(false));
        log.taps.push(LocalTap {
            filter: filter.to_owned(),
            on_message,
            stopped: stopped.clone(),
        });
        Ok(stopped)
    }

    pub(super) async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError> {
        let (sender, answer) = oneshot::channel();
        let mut request = Request {
            payload,
            reply: Reply::Local(sender),
        };
        // The first server still listening takes it; the ones gone are
        // forgotten.
        loop {
            let server = {
                let mut servers = lock(&self.inner.servers);
                let list = servers.entry(subject.to_owned()).or_default();
                list.retain(|server| !server.is_closed());
                list.first().cloned()
            };
            let Some(server) = server else {
                return Err(BusError::NoResponders(subject.to_owned()));
            };
            match server.send(request).await {
                Ok(()) => break,
                Err(mpsc::error::SendError(back)) => request = back,
            }
        }
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => Ok(answer),
            // A server that dropped the request without answering.
            Ok(Err(_)) | Err(_) => Err(BusError::TimedOut(subject.to_owned())),
        }
    }

    pub(super) fn serve(&self, subject: &str) -> Requests {
        let (sender, receiver) = mpsc::channel(64);
        lock(&self.inner.servers)
            .entry(subject.to_owned())
            .or_default()
            .push(sender);
        tokio_stream::wrappers::ReceiverStream::new(receiver).boxed()
    }

    pub(super) fn bucket(&self, name: &str, ttl: Duration) -> LocalBucket {
        lock(&self.inner.buckets)
            .entry(name.to_owned())
            .or_insert_with(|| LocalBucket {
                inner: Arc::new(Mutex::new(BucketState {
                    ttl,
                    revision: 0,
                    entries: HashMap::new(),
                    sweep_at: SWEEP_ENTRIES_FROM,
                })),
            })
            .clone()
    }
}

/// Whether a message at `next` or later has come for the subscriber: asked
/// after it registered for wake-ups, so none is missed.
fn ready_since(stream: &LocalStream, filter: &str, exact: bool, next: u64) -> bool {
    let log = lock(&stream.log);
    if exact {
        log.subjects
            .get(filter)
            .and_then(|subject| subject.messages.back())
            .is_some_and(|last| last.seq >= next)
    } else {
        log.last_seq >= next
    }
}

/// A bucket of the in-process bus.
#[derive(Clone)]
pub struct LocalBucket {
    inner: Arc<Mutex<BucketState>>,
}

struct BucketState {
    ttl: Duration,
    /// The last revision given, across keys (as a stream's sequence).
    revision: u64,
    entries: HashMap<String, (Entry, Instant)>,
    /// How many entries the next sweep of expired ones waits for.
    sweep_at: usize,
}

/// The entries a bucket holds before its first sweep of expired ones. An
/// expired entry is otherwise only dropped when its key is read again, and
/// a rate limit's keys (client IPs) often never are.
const SWEEP_ENTRIES_FROM: usize = 1024;

impl BucketState {
    /// Drops the expired entries; the next sweep waits until there are
    /// twice as many as are left, so sweeping costs O(1) a write and a
    /// bucket holds at most twice its live entries.
    fn sweep(&mut self, now: Instant) {
        let ttl = self.ttl;
        self.entries
            .retain(|_, (_, written)| lives(ttl, *written, now));
        self.sweep_at = (2 * self.entries.len()).max(SWEEP_ENTRIES_FROM);
    }

    fn live(&mut self, key: &str, now: Instant) -> Option<Entry> {
        let (entry, written) = self.entries.get(key)?;
        if lives(self.ttl, *written, now) {
            return Some(entry.clone());
        }
        self.entries.remove(key);
        None
    }
}

/// Whether an entry written at `written` is still there at `now`.
fn lives(ttl: Duration, written: Instant, now: Instant) -> bool {
    ttl.is_zero() || now.duration_since(written) <= ttl
}

impl LocalBucket {
    pub(super) fn get(&self, key: &str) -> Option<Entry> {
        lock(&self.inner).live(key, Instant::now())
    }

    /// Create (`expected` none) or update (`expected` the revision).
    pub(super) fn write(
        &self,
        key: &str,
        value: Bytes,
        expected: Option<u64>,
    ) -> Result<u64, BusError> {
        let now = Instant::now();
        let mut state = lock(&self.inner);
        let current = state.live(key, now).map(|entry| entry.revision);
        if current != expected {
            return Err(BusError::Conflict {
                key: key.to_owned(),
            });
        }
        state.revision += 1;
        let revision = state.revision;
        state
            .entries
            .insert(key.to_owned(), (Entry { value, revision }, now));
        if state.entries.len() >= state.sweep_at {
            state.sweep(now);
        }
        Ok(revision)
    }

    pub(super) fn delete(&self, key: &str, revision: u64) -> Result<(), BusError> {
        let mut state = lock(&self.inner);
        match state.live(key, Instant::now()) {
            Some(entry) if entry.revision == revision => {
                state.entries.remove(key);
                Ok(())
            }
            _ => Err(BusError::Conflict {
                key: key.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expired_entries_whose_keys_are_never_read_again_are_dropped() {
        let bucket = LocalBus::default().bucket("rates", Duration::from_millis(1));
        let write = |key: String| bucket.write(&key, Bytes::new(), None).unwrap();
        for n in 0..SWEEP_ENTRIES_FROM {
            write(format!("old-{n}"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        for n in 0..SWEEP_ENTRIES_FROM {
            write(format!("new-{n}"));
        }
        let held = lock(&bucket.inner).entries.len();
        assert!(held <= SWEEP_ENTRIES_FROM + 1, "{held} entries held");
    }
}
