//! The bus between a service's instances (DESIGN §15).
//!
//! One small interface, two implementations: in this process (the embedded
//! default, when `[bus] url` is absent) and NATS JetStream (`nats://…`).
//! Services use only what is here, so no code path above this module differs
//! between one instance and many:
//!
//! - **streams**: messages published on a subject get the stream's next
//!   sequence number and are kept for a while (by age and size); a
//!   subscriber reads a subject (or a wildcard) from any kept sequence on,
//!   then live, in sequence order, each message once;
//! - **request/reply**: a request on a subject goes to one of the instances
//!   serving it, which answers;
//! - **buckets**: key-value with compare-and-set on a revision, entries
//!   expiring a while after their last write.
//!
//! Subjects are dot-separated tokens; `*` matches one token and `>` the rest,
//! as in NATS. Keys and the tokens of subjects may not hold spaces, `*` or
//! `>`.

mod local;
mod nats;
#[cfg(test)]
pub(crate) mod tests;

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use serde::Deserialize;

pub use local::LocalBus;
pub use nats::NatsBus;

/// The variable naming the NATS server tests use, when they may (CI sets
/// it): the bus tests run on it too, and test stacks put their services on
/// it (`testing::Stack::bus`).
pub const TEST_NATS_ENV: &str = "CONFAB_TEST_NATS_URL";

/// `[bus]`: where the instances of a service meet.
#[derive(Debug, Clone, Deserialize)]
pub struct BusSettings {
    /// `nats://host:port`; absent: in this process only (one instance).
    #[serde(default)]
    pub url: Option<String>,
    /// Prefix of every stream and subject, so several Confab deployments (or
    /// tests) can share one NATS server.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Seconds an operation waits for NATS before it fails.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

impl Default for BusSettings {
    /// In-process.
    fn default() -> Self {
        Self {
            url: None,
            namespace: default_namespace(),
            timeout_secs: default_timeout_secs(),
        }
    }
}

fn default_namespace() -> String {
    "confab".to_owned()
}

fn default_timeout_secs() -> u64 {
    5
}

/// How long [`Bus::publish_once`] remembers an id (or the stream's
/// `max_age`, when shorter): NATS's default `duplicate_window`, which the
/// streams made here keep.
pub const DEDUPLICATION_WINDOW: Duration = Duration::from_secs(120);

/// A stream: which subjects it keeps, and for how long.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    /// Letters, digits, `-` and `_`.
    pub name: String,
    /// The subjects it keeps, e.g. `turns.>`.
    pub subjects: String,
    /// A message older than this is dropped.
    pub max_age: Duration,
    /// The oldest messages are dropped beyond this many bytes.
    pub max_bytes: u64,
}

/// A message of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Shared: a message is handed to every reader of its subject.
    pub subject: std::sync::Arc<str>,
    /// The stream's sequence number: 1, 2, … across all its subjects.
    pub seq: u64,
    pub payload: Bytes,
}

/// A bucket's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: Bytes,
    /// What an update or delete must name to replace it.
    pub revision: u64,
}

/// Why a bus operation failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    #[error("no stream keeps subject {0}")]
    NoStream(String),
    /// A compare-and-set lost: the key was created or changed by someone else.
    #[error("key {key} was changed by someone else")]
    Conflict { key: String },
    #[error("nobody serves {0}")]
    NoResponders(String),
    #[error("no answer on {0} in time")]
    TimedOut(String),
    #[error("invalid name {0:?}: letters, digits, '-', '_' and (in subjects) '.'")]
    InvalidName(String),
    /// NATS could not be reached or answered an error.
    #[error("the bus is unavailable: {0}")]
    Unavailable(String),
}

/// A subscription: the messages in sequence order, then live.
pub type Subscription = BoxStream<'static, Result<Message, BusError>>;

/// The requests to a served subject.
pub type Requests = BoxStream<'static, Request>;

/// See [`Bus::ordered_publisher`].
pub enum OrderedPublisher {
    Local(LocalBus, String),
    /// To the publishing task; unbounded: a writer is never held up, and
    /// holds at most its own messages (one turn's events).
    Queued(tokio::sync::mpsc::UnboundedSender<(String, Bytes)>),
}

impl OrderedPublisher {
    /// Publishes `payload` after those given before, once per `id`.
    pub fn publish(&self, id: String, payload: Bytes) {
        match self {
            Self::Local(bus, subject) => {
                if let Err(err) = check_subject(subject, false)
                    .and_then(|()| bus.publish_once(subject, Some(&id), payload))
                {
                    // In process only a subject no stream keeps fails: a
                    // mistake no retry would mend.
                    tracing::error!(error = %err, subject, "a message could not be published");
                }
            }
            Self::Queued(queue) => {
                let _ = queue.send((id, payload));
            }
        }
    }
}

/// What a [`Tap`] calls with each message.
pub type OnMessage = Box<dyn Fn(&Message) + Send + Sync>;

/// A tap on a stream ([`Bus::tap`]): its calls stop when it is dropped.
pub struct Tap {
    stop: TapStop,
}

enum TapStop {
    Local(std::sync::Arc<std::sync::atomic::AtomicBool>),
    Nats(tokio::task::AbortHandle),
}

impl Drop for Tap {
    fn drop(&mut self) {
        match &self.stop {
            TapStop::Local(stopped) => stopped.store(true, std::sync::atomic::Ordering::Release),
            TapStop::Nats(task) => task.abort(),
        }
    }
}

/// The bus of one service: cheap to clone.
#[derive(Clone)]
pub enum Bus {
    Local(LocalBus),
    Nats(NatsBus),
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

impl Bus {
    /// The in-process bus: one instance, nothing outside it.
    pub fn in_process() -> Self {
        Self::Local(LocalBus::default())
    }

    /// The bus `settings` name: NATS when it has a URL, else in-process.
    /// An unreachable NATS server is an error: an instance that starts cut
    /// off from the others would run turns nobody else can see.
    pub async fn connect(settings: &BusSettings) -> Result<Self, BusError> {
        let Some(url) = &settings.url else {
            tracing::info!("bus: in-process (one instance)");
            return Ok(Self::in_process());
        };
        let timeout = Duration::from_secs(settings.timeout_secs);
        let bus = NatsBus::connect(url, &settings.namespace, timeout).await?;
        tracing::info!(
            server = %without_credentials(url),
            namespace = %settings.namespace,
            "bus: NATS JetStream"
        );
        Ok(Self::Nats(bus))
    }

    /// What the start-up line and `/ready` call it.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Local(_) => "in-process",
            Self::Nats(_) => "NATS JetStream",
        }
    }

    /// A span for a bus operation that belongs in a request's trace: see
    /// [`messaging_span`].
    pub fn span(&self, operation: &'static str, destination: &str) -> tracing::Span {
        let system = match self {
            Self::Local(_) => LOCAL_SYSTEM,
            Self::Nats(_) => "nats",
        };
        messaging_span(system, operation, destination)
    }

    /// Whether other instances can be reached: what `/ready` asks.
    pub async fn check(&self) -> Result<(), BusError> {
        match self {
            Self::Local(_) => Ok(()),
            Self::Nats(bus) => bus.check().await,
        }
    }

    /// Creates the stream, or brings an existing one to `spec`.
    pub async fn stream(&self, spec: &StreamSpec) -> Result<(), BusError> {
        check_token(&spec.name, false)?;
        check_subject(&spec.subjects, true)?;
        match self {
            Self::Local(bus) => {
                bus.stream(spec);
                Ok(())
            }
            Self::Nats(bus) => bus.stream(spec).await,
        }
    }

    /// Appends `payload` to the stream keeping `subject`; its sequence number.
    pub async fn publish(&self, subject: &str, payload: Bytes) -> Result<u64, BusError> {
        check_subject(subject, false)?;
        match self {
            Self::Local(bus) => bus.publish_once(subject, None, payload),
            Self::Nats(bus) => bus.publish_once(subject, None, payload).await,
        }
    }

    /// Publishes as [`Bus::publish`] does, once per `id`: the same `id`
    /// published again within [`DEDUPLICATION_WINDOW`] (at most the
    /// stream's `max_age`) is not kept again,
    /// and the answer is the first one's sequence number. What a publisher
    /// retries with when it cannot know whether an earlier attempt was kept
    /// (on NATS, an attempt that timed out may have been stored, its answer
    /// lost or late).
    pub async fn publish_once(
        &self,
        subject: &str,
        id: &str,
        payload: Bytes,
    ) -> Result<u64, BusError> {
        check_subject(subject, false)?;
        match self {
            Self::Local(bus) => bus.publish_once(subject, Some(id), payload),
            Self::Nats(bus) => bus.publish_once(subject, Some(id), payload).await,
        }
    }

    /// Publishes as [`Bus::publish_once`] does, again and again (backing
    /// off up to 5 s) until the bus has taken it: for what must reach the
    /// bus however long it is away, from a task of its own. Its sequence
    /// number.
    pub async fn publish_until_taken(&self, subject: &str, id: &str, payload: Bytes) -> u64 {
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.publish_once(subject, id, payload.clone()).await {
                Ok(seq) => return seq,
                Err(err) => {
                    tracing::warn!(error = %err, subject, ?backoff, "publishing failed; trying again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// A publisher of `subject`'s messages in the order they are given,
    /// each once (by its id) and each until the bus has taken it, which
    /// never makes its caller wait: for a writer that must not be held up
    /// by the bus (a turn's events). In process a message is published at
    /// once, in the caller's call; on NATS a task of the publisher's own
    /// publishes them one after the other ([`Bus::publish_until_taken`]),
    /// and goes on with those given until it is dropped.
    pub fn ordered_publisher(&self, subject: &str) -> OrderedPublisher {
        match self {
            Self::Local(bus) => OrderedPublisher::Local(bus.clone(), subject.to_owned()),
            Self::Nats(_) => {
                let (sender, mut queued) =
                    tokio::sync::mpsc::unbounded_channel::<(String, Bytes)>();
                let (bus, subject) = (self.clone(), subject.to_owned());
                tokio::spawn(async move {
                    while let Some((id, payload)) = queued.recv().await {
                        bus.publish_until_taken(&subject, &id, payload).await;
                    }
                });
                OrderedPublisher::Queued(sender)
            }
        }
    }

    /// The last sequence number of `stream` (0 when it has none): subscribe
    /// from one past it to read only what comes next.
    pub async fn last_seq(&self, stream: &str) -> Result<u64, BusError> {
        match self {
            Self::Local(bus) => bus.last_seq(stream),
            Self::Nats(bus) => bus.last_seq(stream).await,
        }
    }

    /// Makes the sequence of `stream` go on after `seq`: when its last
    /// sequence is lower, the messages it keeps are dropped and the next one
    /// published gets `seq + 1`; otherwise nothing changes. A service whose
    /// database already holds sequence numbers of this stream calls it at
    /// start-up, so that a new (in-process) or reset stream never hands out
    /// a number twice.
    pub async fn continue_after(&self, stream: &str, seq: u64) -> Result<(), BusError> {
        match self {
            Self::Local(bus) => bus.continue_after(stream, seq),
            Self::Nats(bus) => bus.continue_after(stream, seq).await,
        }
    }

    /// The sequence of the last message kept on `subject` (no wildcards),
    /// if any: how far a reader of that subject must read to have read
    /// everything published so far.
    pub async fn last_seq_on(&self, stream: &str, subject: &str) -> Result<Option<u64>, BusError> {
        check_subject(subject, false)?;
        match self {
            Self::Local(bus) => bus.last_seq_on(stream, subject),
            Self::Nats(bus) => bus.last_seq_on(stream, subject).await,
        }
    }

    /// The messages of `stream` on `filter` whose sequence is `from` or
    /// later (those still kept), then each new one as it comes.
    pub async fn subscribe(
        &self,
        stream: &str,
        filter: &str,
        from: u64,
    ) -> Result<Subscription, BusError> {
        check_subject(filter, true)?;
        match self {
            Self::Local(bus) => bus.subscribe(stream, filter, from),
            Self::Nats(bus) => bus.subscribe(stream, filter, from).await,
        }
    }

    /// Calls `on_message` with every message of `stream` on `filter` whose
    /// sequence is `from` or later, in sequence order, each once: those
    /// still kept, then each new one, until the returned [`Tap`] is
    /// dropped. One reader that hands the messages on in process (to the
    /// readers of each conversation, say) without a task of its own: in
    /// process it is called from inside `publish`, under the stream's lock,
    /// before the publisher's call returns, which spares a wake-up of a
    /// listening task per message (issue 20); on NATS from a task that
    /// reads a subscription and begins it again after the last message it
    /// passed on when it ends. `on_message` must be quick, must not block
    /// and must not use the bus.
    pub async fn tap(
        &self,
        stream: &str,
        filter: &str,
        from: u64,
        on_message: impl Fn(&Message) + Send + Sync + 'static,
    ) -> Result<Tap, BusError> {
        check_subject(filter, true)?;
        let stop = match self {
            Self::Local(bus) => {
                TapStop::Local(bus.tap(stream, filter, from, Box::new(on_message))?)
            }
            Self::Nats(_) => {
                // Fails now when the stream is not there, as in process.
                self.last_seq(stream).await?;
                let task = tokio::spawn(tap_subscription(
                    self.clone(),
                    stream.to_owned(),
                    filter.to_owned(),
                    from,
                    on_message,
                ));
                TapStop::Nats(task.abort_handle())
            }
        };
        Ok(Tap { stop })
    }

    /// Asks whoever serves `subject`; their answer, or `TimedOut` after
    /// `timeout`.
    pub async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError> {
        check_subject(subject, false)?;
        match self {
            Self::Local(bus) => bus.request(subject, payload, timeout).await,
            Self::Nats(bus) => bus.request(subject, payload, timeout).await,
        }
    }

    /// The requests sent to `subject`, for as long as the stream is held.
    pub async fn serve(&self, subject: &str) -> Result<Requests, BusError> {
        check_subject(subject, false)?;
        match self {
            Self::Local(bus) => Ok(bus.serve(subject)),
            Self::Nats(bus) => bus.serve(subject).await,
        }
    }

    /// The bucket `name`, created if needed; an entry expires `ttl` after
    /// its last write (never with a zero `ttl`).
    pub async fn bucket(&self, name: &str, ttl: Duration) -> Result<Bucket, BusError> {
        check_token(name, false)?;
        match self {
            Self::Local(bus) => Ok(Bucket::Local(bus.bucket(name, ttl))),
            Self::Nats(bus) => Ok(Bucket::Nats(std::sync::Arc::new(
                bus.bucket(name, ttl).await?,
            ))),
        }
    }
}

/// A request to a served subject; answer it with [`Request::respond`].
pub struct Request {
    pub payload: Bytes,
    reply: Reply,
}

enum Reply {
    Local(tokio::sync::oneshot::Sender<Bytes>),
    Nats {
        client: async_nats::Client,
        subject: Option<async_nats::Subject>,
    },
}

impl Request {
    /// Answers the asker; an asker that gave up is not an error.
    pub async fn respond(self, payload: Bytes) -> Result<(), BusError> {
        match self.reply {
            Reply::Local(sender) => {
                let _gave_up = sender.send(payload);
                Ok(())
            }
            Reply::Nats {
                client,
                subject: Some(subject),
            } => client
                .publish(subject, payload)
                .await
                .map_err(|error| BusError::Unavailable(error.to_string())),
            Reply::Nats { subject: None, .. } => Ok(()),
        }
    }
}

/// Key-value with compare-and-set; entries expire after their last write.
#[derive(Clone)]
pub enum Bucket {
    Local(local::LocalBucket),
    /// Shared: its JetStream handles are large.
    Nats(std::sync::Arc<nats::NatsBucket>),
}

/// `messaging.system` of the in-process bus.
const LOCAL_SYSTEM: &str = "confab";

/// A span for a bus operation that belongs in a request's trace (a turn's
/// claim of its conversation), as the OpenTelemetry messaging conventions
/// have it: `{operation} {destination}`, `messaging.system` (`nats`, or
/// `confab` in process), `messaging.operation.name`,
/// `messaging.destination.name`. Instrument the operation's future with it.
fn messaging_span(
    system: &'static str,
    operation: &'static str,
    destination: &str,
) -> tracing::Span {
    tracing::info_span!(
        "bus",
        otel.name = %format_args!("{operation} {destination}"),
        otel.kind = "client",
        messaging.system = system,
        messaging.operation.name = operation,
        messaging.destination.name = destination,
    )
}

impl Bucket {
    /// A span for an operation on this bucket (named `bucket`) that
    /// belongs in a request's trace: see [`messaging_span`].
    pub fn span(&self, operation: &'static str, bucket: &str) -> tracing::Span {
        let system = match self {
            Self::Local(_) => LOCAL_SYSTEM,
            Self::Nats(_) => "nats",
        };
        messaging_span(system, operation, bucket)
    }

    /// The live entry of `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<Entry>, BusError> {
        check_subject(key, false)?;
        match self {
            Self::Local(bucket) => Ok(bucket.get(key)),
            Self::Nats(bucket) => bucket.get(key).await,
        }
    }

    /// Writes `key` only if it has no live entry; the new revision, or
    /// `Conflict`.
    pub async fn create(&self, key: &str, value: Bytes) -> Result<u64, BusError> {
        check_subject(key, false)?;
        match self {
            Self::Local(bucket) => bucket.write(key, value, None),
            Self::Nats(bucket) => bucket.create(key, value).await,
        }
    }

    /// Replaces `key` only if its revision is still `revision`; the new
    /// revision, or `Conflict`.
    pub async fn update(&self, key: &str, value: Bytes, revision: u64) -> Result<u64, BusError> {
        check_subject(key, false)?;
        match self {
            Self::Local(bucket) => bucket.write(key, value, Some(revision)),
            Self::Nats(bucket) => bucket.update(key, value, revision).await,
        }
    }

    /// Removes `key` only if its revision is still `revision`, or `Conflict`.
    pub async fn delete(&self, key: &str, revision: u64) -> Result<(), BusError> {
        check_subject(key, false)?;
        match self {
            Self::Local(bucket) => bucket.delete(key, revision),
            Self::Nats(bucket) => bucket.delete(key, revision).await,
        }
    }
}

/// `url` without a user name or password, for the logs.
fn without_credentials(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

/// A stream or bucket name: letters, digits, `-`, `_` (and `*`/`>` when
/// `wildcards`, for subject tokens).
fn check_token(token: &str, wildcards: bool) -> Result<(), BusError> {
    let valid = !token.is_empty()
        && (wildcards && (token == "*" || token == ">")
            || token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b':'));
    if valid {
        Ok(())
    } else {
        Err(BusError::InvalidName(token.to_owned()))
    }
}

/// `raw` (a user id, say: any string) as one token of a key or subject:
/// unchanged when it is letters, digits, `-` and `_` only (as ids are),
/// otherwise every other byte as `:` and two hex digits, and the empty
/// string as `:`. Two strings never give the same token.
pub fn escape_token(raw: &str) -> Cow<'_, str> {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    if raw.is_empty() {
        return Cow::Borrowed(":");
    }
    if raw.bytes().all(plain) {
        return Cow::Borrowed(raw);
    }
    let mut escaped = String::with_capacity(raw.len() * 3);
    for b in raw.bytes() {
        if plain(b) {
            escaped.push(char::from(b));
        } else {
            escaped.push_str(&format!(":{b:02x}"));
        }
    }
    Cow::Owned(escaped)
}

/// A subject: tokens joined by `.`; wildcards only in filters, `>` last.
fn check_subject(subject: &str, wildcards: bool) -> Result<(), BusError> {
    let mut tokens = subject.split('.').peekable();
    while let Some(token) = tokens.next() {
        check_token(token, wildcards).map_err(|_| BusError::InvalidName(subject.to_owned()))?;
        if token == ">" && tokens.peek().is_some() {
            return Err(BusError::InvalidName(subject.to_owned()));
        }
    }
    Ok(())
}

/// A tap's reading on NATS: a subscription from `from`, begun again after
/// the last message passed on when it ends or fails (backing off up to 5 s).
async fn tap_subscription(
    bus: Bus,
    stream: String,
    filter: String,
    mut from: u64,
    on_message: impl Fn(&Message),
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match bus.subscribe(&stream, &filter, from).await {
            Ok(mut messages) => {
                backoff = Duration::from_millis(100);
                while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
                    match message {
                        Ok(message) if message.seq >= from => {
                            from = message.seq + 1;
                            on_message(&message);
                        }
                        Ok(_) => {}
                        Err(err) => {
                            tracing::warn!(error = %err, stream, filter, "reading a stream: waiting for the bus");
                        }
                    }
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, stream, filter, ?backoff, "subscribing to a stream failed; trying again");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Whether `subject` matches `filter` (`*` one token, `>` the rest).
fn matches(filter: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for token in filter.split('.') {
        match (token, subject_tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (token, Some(other)) if token == other => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}
