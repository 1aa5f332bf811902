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
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

/// A request body: empty, whole, or streamed from the client.
pub type RequestBody = BoxBody<Bytes, std::io::Error>;

/// Idle connections kept per upstream and worker; more are closed when they
/// come back. 32: far more than a worker's requests in flight to one
/// upstream at a time in the benchmarks, few enough sockets to leave open.
const MAX_IDLE: usize = 32;

/// Where one upstream is reached: what a route's requests connect to.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Index of the upstream in the routing table (its pool's).
    pub id: usize,
    /// `scheme://host[:port]`, for WebSocket URLs and the logs.
    pub base_url: Arc<str>,
    /// `scheme://host:port/`, what the connector dials.
    pub origin: hyper::Uri,
    /// The `Host` header of requests to it.
    pub host: hyper::header::HeaderValue,
}

impl Upstream {
    /// The upstream at `base` (`scheme://host[:port]/`), the `id`-th of the
    /// routing table.
    pub fn new(id: usize, base: &reqwest::Url) -> anyhow::Result<Self> {
        let host = base.host_str().context("no host")?;
        let authority = match base.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let base_url = format!("{}://{authority}", base.scheme());
        Ok(Self {
            id,
            origin: hyper::Uri::try_from(format!("{base_url}/"))?,
            base_url: base_url.into(),
            host: hyper::header::HeaderValue::try_from(authority)?,
        })
    }
}

/// One worker's client: build it on the worker that uses it.
pub struct UpstreamClient {
    connector: HttpsConnector<HttpConnector>,
    idle: Rc<Idle>,
    /// For WebSocket handshakes only.
    pub websocket: reqwest::Client,
}

/// Idle connections by upstream id, the most recently used last.
#[derive(Default)]
struct Idle(RefCell<Vec<Vec<SendRequest<RequestBody>>>>);

impl Idle {
    fn take(&self, upstream: usize) -> Option<SendRequest<RequestBody>> {
        self.0.borrow_mut().get_mut(upstream)?.pop()
    }

    fn give_back(&self, upstream: usize, sender: SendRequest<RequestBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.0.borrow_mut();
        if idle.len() <= upstream {
            idle.resize_with(upstream + 1, Vec::new);
        }
        if idle[upstream].len() < MAX_IDLE {
            idle[upstream].push(sender);
        }
    }
}

/// Why a request got no reply.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("connecting: {0}")]
    Connect(String),
    #[error(transparent)]
    Http(#[from] hyper::Error),
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

    /// Sends `request` (origin-form URI; `Host` is set here) to `upstream`
    /// on an idle connection, or a new one. A request that a kept-alive
    /// connection closed before taking (the upstream's keep-alive timeout
    /// raced it) is sent again once on a new connection: it was never
    /// written, so even a POST cannot run twice.
    pub async fn send(
        &self,
        upstream: &Upstream,
        mut request: hyper::Request<RequestBody>,
    ) -> Result<hyper::Response<ReplyBody>, SendError> {
        request
            .headers_mut()
            .insert(hyper::header::HOST, upstream.host.clone());
        let (mut sender, reused) = match self.idle_connection(upstream.id).await {
            Some(sender) => (sender, true),
            None => (self.connect(upstream).await?, false),
        };
        let response = match sender.try_send_request(request).await {
            Ok(response) => response,
            Err(mut err) => match (reused, err.take_message()) {
                (true, Some(request)) => {
                    sender = self.connect(upstream).await?;
                    sender.send_request(request).await?
                }
                _ => return Err(err.into_error().into()),
            },
        };
        let (parts, body) = response.into_parts();
        let body = ReplyBody::new(body, sender, upstream.id, &self.idle);
        Ok(hyper::Response::from_parts(parts, body))
    }

    /// The most recently used idle connection that is still open.
    async fn idle_connection(&self, upstream: usize) -> Option<SendRequest<RequestBody>> {
        while let Some(mut sender) = self.idle.take(upstream) {
            // Ready at once, unless the connection is still winding up the
            // last reply's end; an error means the upstream closed it.
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
        None
    }

    async fn connect(&self, upstream: &Upstream) -> Result<SendRequest<RequestBody>, SendError> {
        let io = self
            .connector
            .clone()
            .call(upstream.origin.clone())
            .await
            .map_err(|err| SendError::Connect(causes(&*err)))?;
        let (mut sender, connection) = http1::Builder::new().handshake(io).await?;
        // The connection's own task reads and writes the socket; it ends
        // when the upstream closes it or the last sender is dropped.
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "upstream connection ended with an error");
            }
        });
        sender.ready().await?;
        Ok(sender)
    }
}

/// A reply's body as a stream of bytes. At its end the connection goes back
/// to the worker's pool; dropped before the end, the connection is closed
/// (hyper cannot reuse it with a reply half read).
pub struct ReplyBody {
    body: Incoming,
    back: Option<(SendRequest<RequestBody>, usize, Rc<Idle>)>,
}

impl ReplyBody {
    fn new(
        body: Incoming,
        sender: SendRequest<RequestBody>,
        upstream: usize,
        idle: &Rc<Idle>,
    ) -> Self {
        let mut reply = Self {
            back: Some((sender, upstream, idle.clone())),
            body,
        };
        // Nothing to read (204, or an empty body): free at once.
        if reply.body.is_end_stream() {
            reply.give_back();
        }
        reply
    }

    /// The body's length when the upstream declared it.
    pub fn exact_len(&self) -> Option<u64> {
        self.body.size_hint().exact()
    }

    fn give_back(&mut self) {
        if let Some((sender, upstream, idle)) = self.back.take() {
            idle.give_back(upstream, sender);
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
