//! A WebSocket passed through as bytes: client ⇄ this service ⇄ upstream.
//!
//! [`connect`] sends the client's handshake upstream; on `101 Switching
//! Protocols` [`Upstream::into_response`] answers the client with the
//! upstream's 101 and copies the raw bytes of both connections into each
//! other. Nothing here parses a frame, so both ends see exactly what the other
//! sent: fragments, ping/pong with their payloads, close frames with code and
//! reason, binary, subprotocols and permessage extensions (the upstream
//! negotiates them with the client, this service never learns their state).
//! The same tunnel serves dashboard-proxy and the gateway.
//!
//! # How actix hands over the raw connection
//!
//! actix-http's HTTP/1 decoder gives a request carrying `Upgrade: websocket`
//! a payload that reads to end of connection, so [`web::Payload`] yields the
//! raw bytes the client sends after the handshake; a 101 response with a
//! streaming body is written without chunked encoding, so the body's bytes
//! reach the client as they are. actix-ws works the same way (it reads
//! `web::Payload` and answers `SwitchingProtocols().streaming(..)`); here the
//! bytes are simply not decoded.
//!
//! # Backpressure
//!
//! Neither direction buffers more than a chunk, so a slow reader on one side
//! stalls the sender on the other instead of growing memory:
//! - upstream → client is the response body itself: it reads from the
//!   upstream only when actix polls it, and actix polls only while its write
//!   buffer to the client has room. No task reads ahead into a channel.
//! - client → upstream is one task that awaits each upstream write before it
//!   takes the next chunk of the payload; actix stops reading the client's
//!   socket while the payload holds 32 KiB.
//!
//! `web::Payload` is `!Send`, so that task is started with
//! [`actix_web::rt::spawn`] on the worker serving the request:
//! [`Upstream::into_response`] must be called from a handler.
//!
//! # Ending
//!
//! When the upstream closes its connection, the body ends, actix closes the
//! client's connection, the payload ends and the copy task stops. When the
//! client's side ends, the upstream connection is shut down for writing (a
//! WebSocket server reads that as the end of the connection and closes), and
//! the body ends at the latest [`CLOSE_GRACE`] later whatever the upstream does.
//!
//! # What it does not do
//!
//! No message size limit and no idle timeout: those belong to the endpoints
//! (the upstream enforces its own limits, both ends run heartbeats). The
//! handshake needs HTTP/1.1 to the upstream (WebSocket over HTTP/2 is another
//! handshake, RFC 8441): give [`connect`] a client that does not use HTTP/2
//! with that upstream (`http1_only`, or plain `http://` without prior
//! knowledge), and one that does not follow redirects if a 3xx should reach
//! the caller as [`HandshakeError::Refused`].

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::http::header as actix_header;
use actix_web::http::{Method, Version};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt, Stream, StreamExt};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep, timeout_at};
use tokio_util::io::ReaderStream;

/// Most of a refused handshake's body kept for the caller: an error body is
/// small, and a misbehaving upstream must not make us buffer a large one.
pub const MAX_REFUSAL_BODY: usize = 64 * 1024;

/// Size of one read from the upstream: 16 KiB is a full TLS record and a few
/// TCP segments, while actix buffers at most 32 KiB for the client before it
/// stops polling the body.
const READ_CHUNK: usize = 16 * 1024;

/// How long the upstream has to close after the client's side ended before the
/// client's connection is ended anyway. 5 s leaves time for its closing frame
/// and keeps a silent upstream from holding a dead client's connection open.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The client's handshake headers sent upstream, besides `Connection` and
/// `Upgrade`.
const HANDSHAKE_HEADERS: [&str; 4] = [
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
];

/// The upstream's 101 headers passed to the client, besides `Connection` and
/// `Upgrade`.
const REPLY_HEADERS: [&str; 3] = [
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
];

/// Whether a request asks for a WebSocket upgrade: an HTTP/1.1 `GET` with
/// `Upgrade: websocket` and no `Transfer-Encoding`. That is the test actix's
/// decoder applies before it hands the handler the raw connection as
/// `web::Payload` (a chunked body would be decoded as a body instead).
pub fn is_upgrade(req: &HttpRequest) -> bool {
    req.method() == Method::GET
        && req.version() == Version::HTTP_11
        && !req.headers().contains_key(actix_header::TRANSFER_ENCODING)
        && req.headers().get_all(actix_header::UPGRADE).any(|value| {
            value
                .as_bytes()
                .trim_ascii()
                .eq_ignore_ascii_case(b"websocket")
        })
}

/// Whether the client's `Connection` names the `upgrade` option (RFC 6455
/// §4.1: a handshake without it is not one).
fn asks_to_upgrade_connection(client: &HttpRequest) -> bool {
    client
        .headers()
        .get_all(actix_header::CONNECTION)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|option| option.trim().eq_ignore_ascii_case("upgrade"))
}

/// Why the upstream did not switch protocols.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The upstream answered, but not with 101: its status, headers and body
    /// (at most [`MAX_REFUSAL_BODY`] bytes) so the caller can pass them on.
    #[error("the upstream refused the WebSocket handshake with status {status}")]
    Refused {
        status: u16,
        headers: HeaderMap,
        body: Bytes,
    },
    /// No connection to the upstream could be made (refused, unreachable,
    /// timed out connecting, TLS refused): nothing of the handshake was
    /// sent, so another instance of the upstream may be tried.
    #[error("the upstream could not be connected to: {0}")]
    NotConnected(String),
    /// The upstream's connection failed during the handshake, or its URL is
    /// unusable (the gateway answers 502).
    #[error("the upstream is unreachable: {0}")]
    Unreachable(String),
    /// The upstream did not answer the handshake in time: within the timeout
    /// given to [`connect`], or the client's own (the gateway answers 504).
    #[error("the upstream did not answer the WebSocket handshake in time")]
    TimedOut,
}

/// An upstream that switched protocols, not yet joined to the client.
#[derive(Debug)]
pub struct Upstream {
    headers: HeaderMap,
    io: reqwest::Upgraded,
}

/// Sends the client's WebSocket handshake upstream and waits for the answer.
///
/// The request is a `GET` to `url` (`http://`, `https://`, `ws://` or
/// `wss://`; the caller builds path and query) carrying `Connection: Upgrade`,
/// `Upgrade: websocket`, the client's `Sec-WebSocket-Key`, `-Version`,
/// `-Protocol` and `-Extensions`, and `headers`: the caller's own (identity,
/// service token, `Authorization`, request id). No other client header is
/// copied; the caller decides what passes. `timeout` bounds connecting and
/// the answer; a refusal's body is read within what remains of it.
pub async fn connect(
    http: &reqwest::Client,
    url: &str,
    client: &HttpRequest,
    headers: HeaderMap,
    timeout: Duration,
) -> Result<Upstream, HandshakeError> {
    let deadline = Instant::now() + timeout;
    let url = http_url(url)?;
    let mut request_headers = headers;
    // `Connection` is hop-by-hop, so it is made here, but the client's
    // handshake is the upstream's to judge, as its key and version are: a
    // client that did not ask to upgrade the connection is refused there.
    let connection = if asks_to_upgrade_connection(client) {
        "Upgrade"
    } else {
        "keep-alive"
    };
    request_headers.insert(header::CONNECTION, HeaderValue::from_static(connection));
    request_headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    for name in HANDSHAKE_HEADERS {
        let name = HeaderName::from_static(name);
        request_headers.remove(&name);
        for value in client.headers().get_all(name.as_str()) {
            if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
                request_headers.append(name.clone(), value);
            }
        }
    }
    let request = http.get(url).headers(request_headers);
    let response = match timeout_at(deadline, request.send()).await {
        Err(_) => return Err(HandshakeError::TimedOut),
        // Before the timeout test: a connect timeout is both, and it sent
        // nothing.
        Ok(Err(err)) if err.is_connect() => return Err(HandshakeError::NotConnected(chain(&err))),
        Ok(Err(err)) if err.is_timeout() => return Err(HandshakeError::TimedOut),
        Ok(Err(err)) => return Err(HandshakeError::Unreachable(chain(&err))),
        Ok(Ok(response)) => response,
    };
    if response.status() != reqwest::StatusCode::SWITCHING_PROTOCOLS {
        return Err(refusal(response, deadline).await);
    }
    let headers = response.headers().clone();
    match timeout_at(deadline, response.upgrade()).await {
        Err(_) => Err(HandshakeError::TimedOut),
        Ok(Err(err)) => Err(HandshakeError::Unreachable(chain(&err))),
        Ok(Ok(io)) => Ok(Upstream { headers, io }),
    }
}

impl Upstream {
    /// The headers of the upstream's 101 answer.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The 101 answer for the client, joined to the upstream.
    ///
    /// It carries the upstream's `Upgrade`, `Sec-WebSocket-Accept`,
    /// `-Protocol` and `-Extensions` (actix adds `Connection: upgrade`). Its
    /// body streams the upstream's bytes to the client while a task copies
    /// the client's raw bytes (`payload`) to the upstream; either side ending
    /// ends the other (see the module documentation). Call it from the handler
    /// that received `payload`.
    pub fn into_response(self, payload: web::Payload) -> HttpResponse {
        let mut reply = HttpResponse::SwitchingProtocols();
        let upgrade = self
            .headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("websocket");
        reply.upgrade(upgrade);
        for name in REPLY_HEADERS {
            for value in self.headers.get_all(name) {
                if let Ok(value) = actix_header::HeaderValue::from_bytes(value.as_bytes()) {
                    reply.append_header((name, value));
                }
            }
        }
        let (reader, writer) = tokio::io::split(self.io);
        let (client_ended, on_client_end) = oneshot::channel();
        actix_web::rt::spawn(client_to_upstream(payload, writer, client_ended));
        reply.streaming(UpstreamToClient {
            bytes: ReaderStream::with_capacity(reader, READ_CHUNK),
            client_ended: Some(on_client_end),
            grace: None,
        })
    }
}

/// Copies the client's bytes upstream, one write at a time, then shuts the
/// upstream down for writing and says so.
async fn client_to_upstream(
    mut payload: web::Payload,
    mut upstream: WriteHalf<reqwest::Upgraded>,
    client_ended: oneshot::Sender<()>,
) {
    while let Some(chunk) = payload.next().await {
        let bytes = match chunk {
            Ok(bytes) => bytes,
            Err(err) => {
                tracing::debug!(error = %err, "WebSocket tunnel: the client's side ended");
                break;
            }
        };
        // Flushed at once: over TLS the record would otherwise wait for more.
        let written = async {
            upstream.write_all(&bytes).await?;
            upstream.flush().await
        };
        if let Err(err) = written.await {
            tracing::debug!(error = %err, "WebSocket tunnel: writing upstream failed");
            break;
        }
    }
    if let Err(err) = upstream.shutdown().await {
        tracing::debug!(error = %err, "WebSocket tunnel: shutting the upstream down failed");
    }
    // The body may already be gone (the upstream ended first): nothing to tell.
    let _ = client_ended.send(());
}

/// The response body: the upstream's bytes, read only when actix asks for the
/// next chunk. A read error ends it like the upstream closing: actix logs a
/// body error at error level, and a peer resetting its connection is not one.
struct UpstreamToClient {
    bytes: ReaderStream<ReadHalf<reqwest::Upgraded>>,
    /// Fires (or is dropped) when the client's side has ended.
    client_ended: Option<oneshot::Receiver<()>>,
    /// Runs from then on; the body ends when it fires.
    grace: Option<Pin<Box<Sleep>>>,
}

impl Stream for UpstreamToClient {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(client_ended) = &mut this.client_ended
            && client_ended.poll_unpin(cx).is_ready()
        {
            this.client_ended = None;
            this.grace = Some(Box::pin(tokio::time::sleep(CLOSE_GRACE)));
        }
        if let Some(grace) = &mut this.grace
            && grace.as_mut().poll(cx).is_ready()
        {
            tracing::debug!("WebSocket tunnel: the upstream stayed open after the client left");
            return Poll::Ready(None);
        }
        match this.bytes.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(bytes))) => Poll::Ready(Some(Ok(bytes))),
            Poll::Ready(Some(Err(err))) => {
                tracing::debug!(error = %err, "WebSocket tunnel: reading upstream failed");
                Poll::Ready(None)
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// `url` with a WebSocket scheme turned into the HTTP one reqwest speaks.
#[expect(
    clippy::result_large_err,
    reason = "a refusal carries the upstream's headers for the caller to pass on; it is built once per handshake, never in a loop"
)]
fn http_url(url: &str) -> Result<reqwest::Url, HandshakeError> {
    let invalid =
        |why: String| HandshakeError::Unreachable(format!("invalid upstream URL {url:?}: {why}"));
    let mut parsed = reqwest::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    let scheme = match parsed.scheme() {
        "ws" | "http" => "http",
        "wss" | "https" => "https",
        other => return Err(invalid(format!("unsupported scheme {other:?}"))),
    };
    parsed
        .set_scheme(scheme)
        .map_err(|()| invalid("cannot change the scheme".to_owned()))?;
    Ok(parsed)
}

/// The refusal of a non-101 answer, with as much of its body as fits in
/// [`MAX_REFUSAL_BODY`] and arrives before `deadline`.
async fn refusal(mut response: reqwest::Response, deadline: Instant) -> HandshakeError {
    let status = response.status().as_u16();
    let headers = std::mem::take(response.headers_mut());
    let mut body = BytesMut::new();
    while body.len() < MAX_REFUSAL_BODY {
        let Ok(Ok(Some(chunk))) = timeout_at(deadline, response.chunk()).await else {
            break;
        };
        let room = MAX_REFUSAL_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    HandshakeError::Refused {
        status,
        headers,
        body: body.freeze(),
    }
}

/// An error with its causes, which reqwest's own message leaves out.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Takes `token` out of a query string: browsers cannot set headers on a
/// WebSocket, so its access token comes as `?token=`, and it must not travel
/// further in the URL (upstream logs). The rest of the query is returned to
/// be passed on.
pub fn split_token(query: &str) -> (Option<String>, String) {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let token = pairs
        .iter()
        .find(|(key, _)| key == "token")
        .map(|(_, value)| value.clone())
        .filter(|value| !value.is_empty());
    let rest: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(key, _)| key != "token")
        .collect();
    (token, serde_urlencoded::to_string(rest).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_taken_out_of_the_query() {
        let (token, rest) = split_token("token=abc.def&conversation_id=conv-1&dialect=compact");
        assert_eq!(token.as_deref(), Some("abc.def"));
        assert_eq!(rest, "conversation_id=conv-1&dialect=compact");
        assert_eq!(split_token("token=").0, None);
        assert_eq!(split_token("").1, "");
    }

    #[actix_web::test]
    async fn a_refused_connection_is_told_apart_from_a_failed_handshake() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/ws", closed.local_addr().unwrap());
        drop(closed);
        let client = actix_web::test::TestRequest::get()
            .insert_header(("upgrade", "websocket"))
            .to_http_request();
        let refused = connect(
            &reqwest::Client::new(),
            &url,
            &client,
            HeaderMap::new(),
            Duration::from_secs(5),
        )
        .await;
        assert!(
            matches!(refused, Err(HandshakeError::NotConnected(_))),
            "{refused:?}"
        );
    }

    #[test]
    fn websocket_schemes_become_http_ones() {
        let url = |u: &str| http_url(u).map(|u| u.to_string()).ok();
        assert_eq!(
            url("ws://127.0.0.1:9050/ws/chat?a=1").as_deref(),
            Some("http://127.0.0.1:9050/ws/chat?a=1")
        );
        assert_eq!(
            url("wss://example.com/ws").as_deref(),
            Some("https://example.com/ws")
        );
        assert_eq!(url("http://h/ws").as_deref(), Some("http://h/ws"));
        assert!(url("ftp://h/ws").is_none());
        assert!(url("not a url").is_none());
    }

    #[test]
    fn only_a_get_with_upgrade_websocket_is_an_upgrade() {
        use actix_web::test::TestRequest;
        let upgrade = TestRequest::get()
            .insert_header(("upgrade", "WebSocket"))
            .insert_header(("connection", "Upgrade"))
            .to_http_request();
        assert!(is_upgrade(&upgrade));
        let plain = TestRequest::get().to_http_request();
        assert!(!is_upgrade(&plain));
        let post = TestRequest::post()
            .insert_header(("upgrade", "websocket"))
            .to_http_request();
        assert!(!is_upgrade(&post));
        let other = TestRequest::get()
            .insert_header(("upgrade", "h2c"))
            .to_http_request();
        assert!(!is_upgrade(&other));
    }
}
