//! The bus on NATS JetStream: what several instances share.
//!
//! Every stream and subject is named under the bus's namespace
//! (`confab_turns`, `confab.turns.…`), so deployments and tests can share a
//! server. Buckets are plain streams keeping one message per subject (the
//! key), written with `Nats-Expected-Last-Subject-Sequence` for
//! compare-and-set: JetStream's own key-value API would do the same, but
//! async-nats 0.52 cannot read the answer of the NATS 2.9 servers Debian
//! ships when it creates one, and this needs nothing the stream API lacks.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, context::PublishErrorKind, stream};
use async_nats::{HeaderMap, client::RequestErrorKind};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};

use super::{BusError, Entry, Message, Reply, Request, Requests, StreamSpec, Subscription};

/// The header marking a bucket entry as deleted.
const OPERATION: &str = "Confab-Operation";
const DELETED: &str = "deleted";

/// The NATS bus; clones share one connection.
#[derive(Clone)]
pub struct NatsBus {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    namespace: String,
    url: String,
    timeout: Duration,
}

fn unavailable(error: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(error.to_string())
}

impl NatsBus {
    /// Connects to `url`; every name lives under `namespace`.
    pub async fn connect(url: &str, namespace: &str, timeout: Duration) -> Result<Self, BusError> {
        super::check_token(namespace, false)?;
        // What errors and `/ready` name: never the password.
        let shown = super::without_credentials(url);
        let client = async_nats::ConnectOptions::new()
            .name("confab")
            .connection_timeout(timeout)
            .request_timeout(Some(timeout))
            .connect(url)
            .await
            .map_err(|error| BusError::Unavailable(format!("connecting to {shown}: {error}")))?;
        let mut jetstream = jetstream::new(client.clone());
        jetstream.set_timeout(timeout);
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                jetstream,
                namespace: namespace.to_owned(),
                url: shown,
                timeout,
            }),
        })
    }

    fn subject(&self, subject: &str) -> String {
        format!("{}.{subject}", self.inner.namespace)
    }

    fn stream_name(&self, name: &str) -> String {
        format!("{}_{name}", self.inner.namespace)
    }

    pub(super) async fn check(&self) -> Result<(), BusError> {
        use async_nats::connection::State;
        let url = &self.inner.url;
        let state = self.inner.client.connection_state();
        if state != State::Connected {
            return Err(BusError::Unavailable(format!("NATS at {url} is {state}")));
        }
        // JetStream's account info, read as plain JSON: async-nats's own
        // `query_account` cannot parse NATS 2.9's answer.
        let asked = self.inner.client.request("$JS.API.INFO", Bytes::new());
        let answer = tokio::time::timeout(self.inner.timeout, asked)
            .await
            .map_err(|_| BusError::Unavailable(format!("JetStream at {url} did not answer")))?
            .map_err(|error| BusError::Unavailable(format!("JetStream at {url}: {error}")))?;
        let info: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap_or_default();
        match info.get("error") {
            None => Ok(()),
            Some(error) => Err(BusError::Unavailable(format!(
                "JetStream at {url}: {error}"
            ))),
        }
    }

    pub(super) async fn stream(&self, spec: &StreamSpec) -> Result<(), BusError> {
        self.create_stream(stream::Config {
            name: self.stream_name(&spec.name),
            subjects: vec![self.subject(&spec.subjects)],
            max_age: spec.max_age,
            max_bytes: i64::try_from(spec.max_bytes).unwrap_or(i64::MAX),
            ..stream::Config::default()
        })
        .await
    }

    async fn create_stream(&self, config: stream::Config) -> Result<(), BusError> {
        let name = config.name.clone();
        self.inner
            .jetstream
            .create_or_update_stream(config)
            .await
            .map(drop)
            .map_err(|error| unavailable(format!("creating stream {name}: {error}")))
    }

    /// Deletes every stream of this bus's namespace, whoever made it
    /// (tests clean up with this).
    pub async fn remove_namespace(&self) -> Result<(), BusError> {
        let prefix = self.stream_name("");
        let names: Vec<String> = self
            .inner
            .jetstream
            .stream_names()
            .try_collect()
            .await
            .map_err(unavailable)?;
        for name in names.iter().filter(|name| name.starts_with(&prefix)) {
            self.inner
                .jetstream
                .delete_stream(name)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// Publishes; with an `id`, once per id (`Nats-Msg-Id`: the stream
    /// keeps one message per id within its duplicate window and answers a
    /// repeat with the first's sequence).
    pub(super) async fn publish_once(
        &self,
        subject: &str,
        id: Option<&str>,
        payload: Bytes,
    ) -> Result<u64, BusError> {
        let mut message = jetstream::message::PublishMessage::build().payload(payload);
        if let Some(id) = id {
            message = message.message_id(id);
        }
        let ack = self
            .inner
            .jetstream
            .send_publish(self.subject(subject), message)
            .await
            .map_err(|error| publish_error(subject, error))?;
        let ack = ack.await.map_err(|error| publish_error(subject, error))?;
        Ok(ack.sequence)
    }

    pub(super) async fn last_seq(&self, name: &str) -> Result<u64, BusError> {
        let mut stream = self.get_stream(name).await?;
        let info = stream.info().await.map_err(unavailable)?;
        Ok(info.state.last_sequence)
    }

    pub(super) async fn continue_after(&self, name: &str, seq: u64) -> Result<(), BusError> {
        let mut stream = self.get_stream(name).await?;
        let info = stream.info().await.map_err(unavailable)?;
        if info.state.last_sequence < seq {
            // A purge up to a sequence past the last one sets the stream's
            // first sequence there (NATS 2.9 has no `first_seq` setting).
            stream
                .purge()
                .sequence(seq + 1)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    pub(super) async fn last_seq_on(
        &self,
        name: &str,
        subject: &str,
    ) -> Result<Option<u64>, BusError> {
        let stream = self.get_stream(name).await?;
        match stream
            .get_last_raw_message_by_subject(&self.subject(subject))
            .await
        {
            Ok(message) => Ok(Some(message.sequence)),
            Err(error) => match error.kind() {
                stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
                _ => Err(unavailable(error)),
            },
        }
    }

    async fn get_stream(&self, name: &str) -> Result<stream::Stream, BusError> {
        self.inner
            .jetstream
            .get_stream(self.stream_name(name))
            .await
            .map_err(|error| match error.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(_) => {
                    BusError::NoStream(name.to_owned())
                }
                _ => unavailable(error),
            })
    }

    pub(super) async fn subscribe(
        &self,
        name: &str,
        filter: &str,
        from: u64,
    ) -> Result<Subscription, BusError> {
        let stream = self.get_stream(name).await?;
        // An ordered consumer: ephemeral, in order, recreated by the client
        // from where it was when the connection or the server comes back.
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: self.subject(filter),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: from.max(1),
                },
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        let messages = consumer.messages().await.map_err(unavailable)?;
        let prefix = self.inner.namespace.len() + 1;
        Ok(messages
            .map(move |message| {
                let message = message.map_err(unavailable)?;
                let seq = message.info().map_err(unavailable)?.stream_sequence;
                Ok(Message {
                    subject: message.subject.get(prefix..).unwrap_or_default().into(),
                    seq,
                    payload: message.payload.clone(),
                })
            })
            .boxed())
    }

    pub(super) async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError> {
        let asked = self.inner.client.request(self.subject(subject), payload);
        match tokio::time::timeout(timeout, asked).await {
            Err(_) => Err(BusError::TimedOut(subject.to_owned())),
            Ok(Ok(answer)) => Ok(answer.payload),
            Ok(Err(error)) => Err(match error.kind() {
                RequestErrorKind::NoResponders => BusError::NoResponders(subject.to_owned()),
                RequestErrorKind::TimedOut => BusError::TimedOut(subject.to_owned()),
                _ => unavailable(error),
            }),
        }
    }

    pub(super) async fn serve(&self, subject: &str) -> Result<Requests, BusError> {
        // A queue group: each request goes to one of the instances serving it.
        let subscriber = self
            .inner
            .client
            .queue_subscribe(self.subject(subject), "serve".to_owned())
            .await
            .map_err(unavailable)?;
        let client = self.inner.client.clone();
        Ok(subscriber
            .map(move |message| Request {
                payload: message.payload,
                reply: Reply::Nats {
                    client: client.clone(),
                    subject: message.reply,
                },
            })
            .boxed())
    }

    pub(super) async fn bucket(&self, name: &str, ttl: Duration) -> Result<NatsBucket, BusError> {
        let stream_name = self.stream_name(&format!("kv_{name}"));
        let subjects = format!("{}.kv.{name}", self.inner.namespace);
        self.create_stream(stream::Config {
            name: stream_name.clone(),
            subjects: vec![format!("{subjects}.>")],
            max_messages_per_subject: 1,
            max_age: ttl,
            ..stream::Config::default()
        })
        .await?;
        let stream = self
            .inner
            .jetstream
            .get_stream(&stream_name)
            .await
            .map_err(unavailable)?;
        Ok(NatsBucket {
            jetstream: self.inner.jetstream.clone(),
            stream,
            subjects: subjects.into(),
            timeout: self.inner.timeout,
        })
    }
}

fn publish_error(subject: &str, error: jetstream::context::PublishError) -> BusError {
    match error.kind() {
        PublishErrorKind::StreamNotFound => BusError::NoStream(subject.to_owned()),
        _ => unavailable(error),
    }
}

/// A bucket on NATS: a stream keeping the last message of each key.
pub struct NatsBucket {
    jetstream: jetstream::Context,
    stream: stream::Stream,
    /// `<namespace>.kv.<bucket>`: a key's subject is this `.key`.
    subjects: Arc<str>,
    timeout: Duration,
}

impl NatsBucket {
    fn subject(&self, key: &str) -> String {
        format!("{}.{key}", self.subjects)
    }

    /// The last message of `key`, deleted or not.
    async fn last(&self, key: &str) -> Result<Option<(Entry, bool)>, BusError> {
        match self
            .stream
            .get_last_raw_message_by_subject(&self.subject(key))
            .await
        {
            Ok(message) => {
                let deleted = message
                    .headers
                    .get(OPERATION)
                    .is_some_and(|value| value.as_str() == DELETED);
                let entry = Entry {
                    value: message.payload,
                    revision: message.sequence,
                };
                Ok(Some((entry, deleted)))
            }
            Err(error) => match error.kind() {
                stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
                _ => Err(unavailable(error)),
            },
        }
    }

    pub(super) async fn get(&self, key: &str) -> Result<Option<Entry>, BusError> {
        Ok(self
            .last(key)
            .await?
            .and_then(|(entry, deleted)| (!deleted).then_some(entry)))
    }

    /// Publishes to `key` if its last message is still `expected` (0: none).
    async fn write(
        &self,
        key: &str,
        value: Bytes,
        expected: u64,
        headers: Option<HeaderMap>,
    ) -> Result<u64, BusError> {
        let mut publish = jetstream::message::PublishMessage::build()
            .payload(value)
            .expected_last_subject_sequence(expected);
        for (name, values) in headers.iter().flat_map(|headers| headers.iter()) {
            for value in values {
                publish = publish.header(name.clone(), value.clone());
            }
        }
        let conflict = |error: jetstream::context::PublishError| match error.kind() {
            PublishErrorKind::WrongLastSequence => BusError::Conflict {
                key: key.to_owned(),
            },
            _ => unavailable(error),
        };
        let ack = self
            .jetstream
            .send_publish(self.subject(key), publish)
            .await
            .map_err(conflict)?;
        let ack = tokio::time::timeout(self.timeout, ack)
            .await
            .map_err(|_| BusError::TimedOut(key.to_owned()))?
            .map_err(conflict)?;
        Ok(ack.sequence)
    }

    pub(super) async fn create(&self, key: &str, value: Bytes) -> Result<u64, BusError> {
        match self.write(key, value.clone(), 0, None).await {
            Err(BusError::Conflict { .. }) => match self.last(key).await? {
                // Deleted, not expired: its tombstone is the last message.
                Some((tombstone, true)) => self.write(key, value, tombstone.revision, None).await,
                _ => Err(BusError::Conflict {
                    key: key.to_owned(),
                }),
            },
            written => written,
        }
    }

    pub(super) async fn update(
        &self,
        key: &str,
        value: Bytes,
        revision: u64,
    ) -> Result<u64, BusError> {
        self.write(key, value, revision, None).await
    }

    pub(super) async fn delete(&self, key: &str, revision: u64) -> Result<(), BusError> {
        let mut headers = HeaderMap::new();
        headers.insert(OPERATION, DELETED);
        self.write(key, Bytes::new(), revision, Some(headers))
            .await
            .map(drop)
    }
}
