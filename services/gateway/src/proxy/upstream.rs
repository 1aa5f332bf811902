//! The gateway's client towards the upstream services.
//!
//! Proxied requests go over hyper's HTTP/1.1 connections directly: reqwest's
//! redirects and retries are not a proxy's to make (redirects belong to the
//! client, and a retried POST could run twice). The pool is this worker's
//! own rather than hyper-util's shared one: a worker serves a request from
//! start to end on its one thread, so a connection is taken from the
//! worker's list and put back when the reply's body has ended, with no lock,
//! lookup or spawned task per request. WebSocket handshakes still use
//! reqwest, for its upgrade support (`confab_kit::ws_tunnel`); they are one
//! per connection, not per message.
//!
//! An upstream may have several instances (see `instances`): the pool is
//! kept per instance, and a request whose connection an instance refused
//! goes to the next one.
//!
//! An upstream named in `[proxy] http2` is called over HTTP/2 by prior
//! knowledge instead: the worker keeps one connection per instance, and
//! every request to it, streams included, is a stream of that connection.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::web::Bytes;
use anyhow::Context as _;
use futures_util::{Stream, StreamExt};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Body, Frame, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::client::conn::http2;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower_service::Service;

use super::instances::{Instance, Refusals, Upstream};

/// A request body: empty, whole, or streamed from the client.
pub type RequestBody = BoxBody<Bytes, std::io::Error>;

/// Idle connections kept per upstream instance and worker; more are closed
/// when they come back. 32: far more than a worker's requests in flight to
/// one upstream at a time in the benchmarks, few enough sockets to leave
/// open.
const MAX_IDLE: usize = 32;

/// One worker's client: build it on the worker that uses it.
pub struct UpstreamClient {
    connector: HttpsConnector<HttpConnector>,
    idle: Rc<Idle>,
    /// The worker's HTTP/2 connection to each instance spoken to that way,
    /// by instance id.
    multiplexed: RefCell<Vec<Rc<Multiplexed>>>,
    /// For WebSocket handshakes only.
    pub websocket: reqwest::Client,
}

/// An HTTP/2 connection to one instance, once opened. Locked while one is
/// being opened, so that the requests of a burst wait for that one rather
/// than each opening its own.
type Multiplexed = tokio::sync::Mutex<Option<http2::SendRequest<RequestBody>>>;

/// Idle connections by instance id, the most recently used last.
#[derive(Default)]
struct Idle(RefCell<Vec<Vec<SendRequest<RequestBody>>>>);

impl Idle {
    fn take(&self, instance: usize) -> Option<SendRequest<RequestBody>> {
        self.0.borrow_mut().get_mut(instance)?.pop()
    }

    fn give_back(&self, instance: usize, sender: SendRequest<RequestBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.0.borrow_mut();
        if idle.len() <= instance {
            idle.resize_with(instance + 1, Vec::new);
        }
        if idle[instance].len() < MAX_IDLE {
            idle[instance].push(sender);
        }
    }
}

/// Why a request got no reply.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Every instance refused the connection: the request was sent nowhere.
    #[error("no instance accepted a connection: {0}")]
    Connect(Refusals),
    /// The instance at `instance` took the connection, then failed it.
    #[error("{instance}: {source}")]
    Http {
        instance: Arc<str>,
        source: hyper::Error,
    },
}

/// How sending to one instance went wrong.
#[expect(
    clippy::large_enum_variant,
    reason = "it travels in a Result beside a Response, which is as large; boxing the request would allocate on every refusal for nothing"
)]
enum Attempt {
    /// It refused the connection: the request was not sent and comes back.
    Refused(hyper::Request<RequestBody>, String),
    Failed(hyper::Error),
}

impl UpstreamClient {
    /// A worker's client; `websocket` is shared by all workers.
    pub fn new(connect_timeout: Duration, websocket: reqwest::Client) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Self {
            connector,
            idle: Rc::default(),
            multiplexed: RefCell::default(),
            websocket,
        }
    }

    /// The client for WebSocket handshakes (no redirects: a proxy passes
    /// them back).
    pub fn websocket_client(connect_timeout: Duration) -> anyhow::Result<reqwest::Client> {
        reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .http1_only()
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .build()
            .context("building the WebSocket handshake client")
    }

    /// Sends `request` (origin-form URI; `Host` is set here) to one of
    /// `upstream`'s instances, in the order of [`Upstream::attempts`]: on an
    /// idle connection to it, or a new one. An instance that refuses the
    /// connection is marked to be skipped and the request goes to the next;
    /// only when every instance refused does it fail, with
    /// [`SendError::Connect`]. Answers the reply and the instance that sent
    /// it.
    pub async fn send<'u>(
        &self,
        upstream: &'u Upstream,
        request: hyper::Request<RequestBody>,
    ) -> Result<(hyper::Response<ReplyBody>, &'u Instance), SendError> {
        let mut request = request;
        let mut refusals = Refusals::default();
        for instance in upstream.attempts() {
            request
                .headers_mut()
                .insert(hyper::header::HOST, instance.host.clone());
            match self.send_to(upstream, instance, request).await {
                Ok(response) => return Ok((response, instance)),
                Err(Attempt::Refused(unsent, reason)) => {
                    upstream.refused(instance, &reason, &mut refusals);
                    request = unsent;
                }
                Err(Attempt::Failed(source)) => {
                    return Err(SendError::Http {
                        instance: instance.base_url.clone(),
                        source,
                    });
                }
            }
        }
        Err(SendError::Connect(refusals))
    }

    /// Sends `request` to `instance`. A request that a kept-alive
    /// connection closed before taking (the upstream's keep-alive timeout
    /// raced it) is sent again once on a new connection: it was never
    /// written, so even a POST cannot run twice. So is a bodiless `GET` or
    /// `HEAD` whose kept-alive connection closed before any answer (written
    /// just as the upstream closed it): idempotent, it may run twice (RFC
    /// 9110 §9.2.2), and a page reload must not fail for a pool's race.
    async fn send_to(
        &self,
        upstream: &Upstream,
        instance: &Instance,
        request: hyper::Request<RequestBody>,
    ) -> Result<hyper::Response<ReplyBody>, Attempt> {
        if upstream.http2() {
            return self.send_over_http2(upstream, instance, request).await;
        }
        let (mut sender, reused) = match self.idle_connection(instance.id).await {
            Some(sender) => (sender, true),
            None => match self.connect(upstream, instance).await {
                Ok(sender) => (sender, false),
                Err(err) => return Err(err.attempt(request)),
            },
        };
        let again = reused.then(|| repeatable(&request)).flatten();
        let response = match sender.try_send_request(request).await {
            Ok(response) => response,
            Err(mut err) => {
                let retry = match (reused, err.take_message(), again) {
                    (true, None, Some(again)) if err.error().is_incomplete_message() => again,
                    (true, Some(request), _) => request,
                    _ => return Err(Attempt::Failed(err.into_error())),
                };
                let (fresh, retry) = unsent(self.connect(upstream, instance).await, retry)?;
                sender = fresh;
                sender.send_request(retry).await.map_err(Attempt::Failed)?
            }
        };
        let (parts, body) = response.into_parts();
        let body = ReplyBody::new(body, sender, instance.id, &self.idle);
        Ok(hyper::Response::from_parts(parts, body))
    }

    /// Sends `request` as a stream of the worker's HTTP/2 connection to
    /// `instance`, opened on first use and again once it closed. A request
    /// the connection did not take (it was closing) goes once more over a
    /// new one: it was never sent, so even a POST cannot run twice.
    async fn send_over_http2(
        &self,
        upstream: &Upstream,
        instance: &Instance,
        request: hyper::Request<RequestBody>,
    ) -> Result<hyper::Response<ReplyBody>, Attempt> {
        let mut request = request;
        // HTTP/2 names the target in :scheme and :authority, not Host.
        request.headers_mut().remove(hyper::header::HOST);
        let mut target = instance.origin.clone().into_parts();
        target.path_and_query = request.uri().path_and_query().cloned();
        match hyper::Uri::from_parts(target) {
            Ok(uri) => *request.uri_mut() = uri,
            Err(err) => {
                return Err(Attempt::Refused(
                    request,
                    format!("no HTTP/2 target for the request: {err}"),
                ));
            }
        }
        let (mut sender, request) =
            unsent(self.http2_connection(upstream, instance).await, request)?;
        let response = match sender.try_send_request(request).await {
            Ok(response) => response,
            Err(mut err) => {
                let Some(retry) = err.take_message() else {
                    return Err(Attempt::Failed(err.into_error()));
                };
                let (fresh, retry) =
                    unsent(self.http2_connection(upstream, instance).await, retry)?;
                sender = fresh;
                sender.send_request(retry).await.map_err(Attempt::Failed)?
            }
        };
        let (parts, body) = response.into_parts();
        Ok(hyper::Response::from_parts(
            parts,
            ReplyBody::unpooled(body),
        ))
    }

    /// The worker's open HTTP/2 connection to `instance`, or a new one,
    /// kept as the worker's one to it.
    async fn http2_connection(
        &self,
        upstream: &Upstream,
        instance: &Instance,
    ) -> Result<http2::SendRequest<RequestBody>, Connect> {
        let slot = {
            let mut multiplexed = self.multiplexed.borrow_mut();
            if multiplexed.len() <= instance.id {
                multiplexed.resize_with(instance.id + 1, Rc::default);
            }
            multiplexed[instance.id].clone()
        };
        let mut slot = slot.lock().await;
        if let Some(sender) = slot.as_ref().filter(|sender| !sender.is_closed()) {
            return Ok(sender.clone());
        }
        let io = self.open(upstream, instance).await?;
        let (mut sender, connection) = http2::Builder::new(TokioExecutor::new())
            .handshake(io)
            .await
            .map_err(Connect::Failed)?;
        drive(connection);
        sender.ready().await.map_err(Connect::Failed)?;
        *slot = Some(sender.clone());
        Ok(sender)
    }

    /// The most recently used idle connection that is still open.
    async fn idle_connection(&self, instance: usize) -> Option<SendRequest<RequestBody>> {
        while let Some(mut sender) = self.idle.take(instance) {
            // Ready at once, unless the connection is still winding up the
            // last reply's end; an error means the upstream closed it.
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
        None
    }

    /// A new HTTP/1.1 connection to `instance`.
    async fn connect(
        &self,
        upstream: &Upstream,
        instance: &Instance,
    ) -> Result<SendRequest<RequestBody>, Connect> {
        let io = self.open(upstream, instance).await?;
        let (mut sender, connection) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(Connect::Failed)?;
        drive(connection);
        sender.ready().await.map_err(Connect::Failed)?;
        Ok(sender)
    }

    /// A socket to `instance`, which is live again if it accepts.
    async fn open(&self, upstream: &Upstream, instance: &Instance) -> Result<UpstreamIo, Connect> {
        let io = self
            .connector
            .clone()
            .call(instance.origin.clone())
            .await
            .map_err(|err| Connect::Refused(causes(&*err)))?;
        upstream.connected(instance);
        Ok(io)
    }
}

/// What the connector opens: TCP, with TLS for an `https` upstream.
type UpstreamIo = hyper_rustls::MaybeHttpsStream<hyper_util::rt::TokioIo<tokio::net::TcpStream>>;

/// Runs a connection's own task, which reads and writes its socket. It ends
/// when the upstream closes the connection, or when its last sender is
/// dropped (over HTTP/2, once its streams have ended too).
fn drive(connection: impl Future<Output = hyper::Result<()>> + Send + 'static) {
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "upstream connection ended with an error");
        }
    });
}

/// A copy of `request` to send again if its connection closes before any
/// answer: only for a `GET` or `HEAD` without a body.
fn repeatable(request: &hyper::Request<RequestBody>) -> Option<hyper::Request<RequestBody>> {
    let method = request.method();
    if !(method == hyper::Method::GET || method == hyper::Method::HEAD)
        || !request.body().is_end_stream()
    {
        return None;
    }
    let mut again = hyper::Request::new(empty());
    *again.method_mut() = method.clone();
    *again.uri_mut() = request.uri().clone();
    *again.version_mut() = request.version();
    *again.headers_mut() = request.headers().clone();
    Some(again)
}

/// How a new connection failed.
enum Connect {
    /// No connection was made (refused, unreachable, timed out, TLS
    /// refused): nothing was sent.
    Refused(String),
    /// The connection was made, then failed.
    Failed(hyper::Error),
}

/// The sender of a connection just made, with the `request` to go over
/// it; or, when none could be made, what became of the request.
#[expect(
    clippy::result_large_err,
    reason = "the error hands the unsent request back, as `Attempt` does everywhere; boxing it would allocate on every refusal"
)]
fn unsent<S>(
    connected: Result<S, Connect>,
    request: hyper::Request<RequestBody>,
) -> Result<(S, hyper::Request<RequestBody>), Attempt> {
    match connected {
        Ok(sender) => Ok((sender, request)),
        Err(err) => Err(err.attempt(request)),
    }
}

impl Connect {
    /// What became of `request`, which was to go over the connection.
    fn attempt(self, request: hyper::Request<RequestBody>) -> Attempt {
        match self {
            Connect::Refused(reason) => Attempt::Refused(request, reason),
            Connect::Failed(err) => Attempt::Failed(err),
        }
    }
}

/// A reply's body as a stream of bytes. At its end the connection goes back
/// to the worker's pool, under its instance; dropped before the end, the
/// connection is closed (hyper cannot reuse it with a reply half read).
pub struct ReplyBody {
    body: Incoming,
    back: Option<(SendRequest<RequestBody>, usize, Rc<Idle>)>,
}

impl ReplyBody {
    fn new(
        body: Incoming,
        sender: SendRequest<RequestBody>,
        instance: usize,
        idle: &Rc<Idle>,
    ) -> Self {
        let mut reply = Self {
            back: Some((sender, instance, idle.clone())),
            body,
        };
        // Nothing to read (204, or an empty body): free at once.
        if reply.body.is_end_stream() {
            reply.give_back();
        }
        reply
    }

    /// A reply over HTTP/2: its stream ends with it, there is no
    /// connection to give back.
    fn unpooled(body: Incoming) -> Self {
        Self { body, back: None }
    }

    /// The body's length when the upstream declared it.
    pub fn exact_len(&self) -> Option<u64> {
        self.body.size_hint().exact()
    }

    fn give_back(&mut self) {
        if let Some((sender, instance, idle)) = self.back.take() {
            idle.give_back(instance, sender);
        }
    }
}

impl Stream for ReplyBody {
    type Item = Result<Bytes, hyper::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            return match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => Poll::Ready(Some(Ok(data))),
                    // Trailers: an HTTP/1.1 proxy reply has no place for them.
                    Err(_) => continue,
                },
                Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err))),
                Poll::Ready(None) => {
                    self.give_back();
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            };
        }
    }
}

/// An error and its causes, `: `-separated (a connector's error names the
/// failed step; the cause says why).
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(err), |err| err.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

pub fn empty() -> RequestBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub fn whole(bytes: Bytes) -> RequestBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// A body fed chunk by chunk through `chunks`.
pub fn streamed(chunks: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>) -> RequestBody {
    let frames =
        tokio_stream::wrappers::ReceiverStream::new(chunks).map(|chunk| chunk.map(Frame::data));
    BodyExt::boxed(StreamBody::new(frames))
}
