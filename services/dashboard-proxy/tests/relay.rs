//! dashboard-proxy against a real WebSocket server started by the test, which
//! stands where the gateway would be (any WebSocket server, not a Confab
//! service): it records each handshake and what it receives, echoes
//! messages, picks `confab.compact.v1` when offered, and on command closes,
//! drops the connection, floods the client or stops reading.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confab_kit::settings::ServiceSettings;
use confab_kit::testing::init_test_tracing;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWrite;
use tokio::net::TcpSocket;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};

/// The subprotocol the upstream picks whenever the client offers it.
const COMPACT: &str = "confab.compact.v1";

/// A flood is made of 64 KiB binary messages; see [`flood_messages`].
const FLOOD_MESSAGE_BYTES: usize = 64 * 1024;

/// The kernel buffers the test sets on its own sockets (the upstream's, and
/// the flooding or flooded client's), so that the byte bounds of the flood
/// tests measure the proxy more than the machine's TCP autotuning.
const SMALL_KERNEL_BUFFER: u32 = 64 * 1024;

/// What the upstream saw of one connection.
#[derive(Debug, Clone, Default)]
struct Seen {
    authorization: Option<String>,
    request_id: Option<String>,
    offered_protocols: Option<String>,
    uri: String,
    /// Every message read: data, pings, close frames.
    received: Vec<Message>,
}

/// The test upstream: its URL, and what it saw, wrote and noticed.
struct Upstream {
    url: String,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    connections: Mutex<Vec<Arc<Mutex<Seen>>>>,
    /// Bytes of its own flood the upstream managed to hand to its socket.
    flood_written: AtomicU64,
    /// Bytes of the client's flood read intact and in order.
    flood_read: AtomicU64,
    /// Lets a stalled connection read again.
    resume: Notify,
    /// Notified when a connection ends, and whether it ended without a
    /// close frame read.
    ended: Notify,
    ended_without_close: AtomicBool,
}

impl Upstream {
    fn seen(&self) -> Vec<Seen> {
        self.shared
            .connections
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.lock().unwrap().clone())
            .collect()
    }
}

/// Flood message `i`: its index, then a byte pattern that depends on it, so
/// a lost, repeated or reordered message shows.
fn flood_message(i: usize) -> Vec<u8> {
    let mut bytes = vec![(i % 251) as u8; FLOOD_MESSAGE_BYTES];
    bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
    bytes
}

/// An upstream that accepts `Bearer good-token` only (401 otherwise; 404 for
/// `/ws/trace/missing`), echoes
/// text and binary, and obeys the texts `close-me` (close 4002 "server bye"),
/// `drop-me` (drop the connection, no close frame), `flood` (send the flood
/// messages) and `stall` (stop reading until resumed). Flood messages from
/// the client are checked and counted, not echoed.
async fn upstream() -> Upstream {
    // Accepted sockets inherit these small buffers (see SMALL_KERNEL_BUFFER).
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(SMALL_KERNEL_BUFFER).unwrap();
    socket.set_recv_buffer_size(SMALL_KERNEL_BUFFER).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(128).unwrap();
    let upstream = Upstream {
        url: format!("ws://{}", listener.local_addr().unwrap()),
        shared: Arc::default(),
    };
    let shared = upstream.shared.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = Arc::new(Mutex::new(Seen::default()));
            shared.connections.lock().unwrap().push(seen.clone());
            tokio::spawn(serve(tcp, seen, shared.clone()));
        }
    });
    upstream
}

async fn serve(tcp: tokio::net::TcpStream, seen: Arc<Mutex<Seen>>, shared: Arc<Shared>) {
    let record = seen.clone();
    #[expect(
        clippy::result_large_err,
        reason = "the signature tungstenite's handshake callback requires"
    )]
    let callback = move |req: &Request, mut res: Response| -> Result<Response, ErrorResponse> {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let mut seen = record.lock().unwrap();
        seen.authorization = header("authorization");
        seen.request_id = header("x-request-id");
        seen.offered_protocols = header("sec-websocket-protocol");
        seen.uri = req.uri().to_string();
        if seen.uri.starts_with("/ws/trace/missing") {
            let mut refusal = ErrorResponse::new(Some("no such agent".into()));
            *refusal.status_mut() = StatusCode::NOT_FOUND;
            return Err(refusal);
        }
        if seen.authorization.as_deref() != Some("Bearer good-token") {
            let mut refusal = ErrorResponse::new(Some("unauthorized".into()));
            *refusal.status_mut() = StatusCode::UNAUTHORIZED;
            return Err(refusal);
        }
        let offers_compact = seen
            .offered_protocols
            .as_deref()
            .is_some_and(|p| p.split(',').any(|p| p.trim() == COMPACT));
        if offers_compact {
            res.headers_mut()
                .insert("sec-websocket-protocol", HeaderValue::from_static(COMPACT));
        }
        Ok(res)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
        return;
    };
    let mut closed = false;
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Binary(bytes) = &message
            && bytes.len() == FLOOD_MESSAGE_BYTES
        {
            let read = shared.flood_read.load(Ordering::SeqCst);
            if bytes.as_ref() == flood_message(read as usize / FLOOD_MESSAGE_BYTES).as_slice() {
                shared
                    .flood_read
                    .fetch_add(bytes.len() as u64, Ordering::SeqCst);
                continue;
            }
        }
        seen.lock().unwrap().received.push(message.clone());
        match message {
            Message::Text(text) if text.as_str() == "close-me" => {
                let frame = CloseFrame {
                    code: CloseCode::from(4002),
                    reason: "server bye".into(),
                };
                let _ = ws.close(Some(frame)).await;
            }
            Message::Text(text) if text.as_str() == "drop-me" => return,
            Message::Text(text) if text.as_str() == "stall" => shared.resume.notified().await,
            Message::Text(text) if text.as_str() == "flood" => {
                for i in 0..flood_messages() {
                    if ws.send(Message::binary(flood_message(i))).await.is_err() {
                        break;
                    }
                    shared
                        .flood_written
                        .fetch_add(FLOOD_MESSAGE_BYTES as u64, Ordering::SeqCst);
                }
            }
            Message::Text(_) | Message::Binary(_) => {
                let _ = ws.send(message).await;
            }
            Message::Close(_) => closed = true,
            _ => {}
        }
    }
    if !closed {
        shared.ended_without_close.store(true, Ordering::SeqCst);
    }
    shared.ended.notify_one();
}

/// A running dashboard-proxy relaying to `upstream_url`; its ws:// base URL.
async fn proxy(upstream_url: &str) -> String {
    proxy_with(upstream_url, |_| {}).await
}

async fn proxy_with(
    upstream_url: &str,
    configure: impl FnOnce(&mut dashboard_proxy::Settings),
) -> String {
    init_test_tracing();
    let mut settings = dashboard_proxy::Settings::defaults().unwrap();
    settings.server.port = 0;
    settings.upstream.url = upstream_url.to_owned();
    configure(&mut settings);
    let app = dashboard_proxy::build(settings).await.unwrap();
    let url = format!("ws://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    url
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str) -> Client {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// Connects over a socket whose buffers are [`SMALL_KERNEL_BUFFER`].
async fn connect_with_small_buffers(url: &str) -> Client {
    let address = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(SMALL_KERNEL_BUFFER).unwrap();
    socket.set_recv_buffer_size(SMALL_KERNEL_BUFFER).unwrap();
    let tcp = socket.connect(address).await.unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(tcp);
    tokio_tungstenite::client_async(url, stream)
        .await
        .unwrap()
        .0
}

/// Connects with extra request headers; also returns the handshake response.
async fn connect_with(
    url: &str,
    headers: &[(&'static str, &'static str)],
) -> (
    Client,
    tokio_tungstenite::tungstenite::handshake::client::Response,
) {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, HeaderValue::from_static(value));
    }
    tokio_tungstenite::connect_async(request).await.unwrap()
}

/// The next close frame from the proxy, skipping other messages; returns them too.
async fn close_of(client: &mut Client) -> (Option<(u16, String)>, Vec<Message>) {
    let mut before = Vec::new();
    while let Some(message) = client.next().await {
        match message {
            Ok(Message::Close(frame)) => {
                return (
                    frame.map(|f| (u16::from(f.code), f.reason.to_string())),
                    before,
                );
            }
            Ok(other) => before.push(other),
            Err(_) => break,
        }
    }
    (None, before)
}

/// The next message that is not a ping or pong.
async fn next_data(client: &mut Client) -> Message {
    loop {
        match client.next().await.unwrap().unwrap() {
            Message::Ping(_) | Message::Pong(_) => {}
            other => return other,
        }
    }
}

#[tokio::test]
async fn the_token_becomes_a_bearer_header_and_leaves_the_forwarded_query() {
    let upstream = upstream().await;
    let proxy = proxy(&upstream.url).await;
    let (mut client, _) = connect_with(
        &format!("{proxy}/ws/chat?token=good-token&conversation_id=conv-1"),
        &[("x-request-id", "req-from-the-browser")],
    )
    .await;
    client.send(Message::text("hello")).await.unwrap();
    assert_eq!(next_data(&mut client).await, Message::text("hello"));

    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer good-token"));
    assert_eq!(
        seen[0].uri, "/ws/chat?conversation_id=conv-1&dialect=compact",
        "the token is not passed on in the URL; the default dialect is asked for"
    );
    assert_eq!(seen[0].request_id.as_deref(), Some("req-from-the-browser"));
}

#[tokio::test]
async fn text_and_binary_messages_flow_both_ways() {
    let upstream = upstream().await;
    let proxy = proxy(&upstream.url).await;
    let mut client = connect(&format!("{proxy}/ws/chat?token=good-token")).await;

    client.send(Message::text("héllo")).await.unwrap();
    assert_eq!(next_data(&mut client).await, Message::text("héllo"));
    let binary = vec![0u8, 1, 2, 255, 0];
    client.send(Message::binary(binary.clone())).await.unwrap();
    assert_eq!(
        next_data(&mut client).await,
        Message::binary(binary.clone())
    );

    let received = upstream.seen()[0].received.clone();
    assert_eq!(
        received,
        vec![Message::text("héllo"), Message::binary(binary)]
    );
}

#[tokio::test]
async fn a_fragmented_message_arrives_whole() {
    let upstream = upstream().await;
    let proxy = proxy(&upstream.url).await;
    let mut client = connect(&format!("{proxy}/ws/chat?token=good-token")).await;

    let fragments = [
        Frame::message("hello, ", OpCode::Data(Data::Text), false),
        Frame::message("fragmented ", OpCode::Data(Data::Continue), false),
        Frame::message("world", OpCode::Data(Data::Continue), true),
    ];
    for fragment in fragments {
        client.send(Message::Frame(fragment)).await.unwrap();
    }

    assert_eq!(
        next_data(&mut client).await,
        Message::text("hello, fragmented world")
    );
    assert_eq!(
        upstream.seen()[0].received,
        vec![Message::text("hello, fragmented world")],
        "the upstream read one message, not three"
    );
}

#[tokio::test]
async fn a_client_ping_gets_the_upstreams_pong_with_its_payload() {
    let upstream = upstream().await;
    let proxy = proxy(&upstream.url).await;
    let mut client = connect(&format!("{proxy}/ws/chat?token=good-token")).await;

    client
        .send(Message::Ping(b"are you there?".to_vec().into()))
        .await
        .unwrap();
    let pong = loop {
        if let Message::Pong(payload) = client.next().await.unwrap().unwrap() {
            break payload;
        }
    };
    assert_eq!(pong.as_ref(), b"are you there?");
    assert_eq!(
        upstream.seen()[0].received,
        vec![Message::Ping(b"are you there?".to_vec().into())],
        "the pong came from the upstream, which saw the ping"
    );
}

#[tokio::test]
async fn a_close_code_and_reason_from_the_client_reach_the_upstream() {
    let upstream = upstream().await;
    let proxy = proxy(&upstream.url).await;
    let mut client = connect(&format!("{proxy}/ws/chat?token=good-token")).await;

    client
        .close(Some(CloseFrame {
            code: CloseCode::from(4000),
            reason: "bye".into(),
        }))
        .await
        .unwrap();
    // The upstream's answering close frame comes after it recorded ours.
    let (answer, _) = close_of(&mut client).await;
    assert_eq!(answer, Some((4000, "bye".to_owned())));

    let received = upstream.seen()[0].received.clone();
    let [Message::Close(Some(frame))] = received.as_slice() else {
        panic!("expected one close frame, got {received:?}");
    };
    assert_eq!(u16::from(frame.code), 4000);
    assert_eq!(frame.reason.as_str(), "bye");
}

#[tokio::test]
async fn a_close_code_and_reason_from_the_upstream_reach_the_client() {
    let upstream = upstream().await;
    let proxy = proxy(&upstream.url).await;
    let mut client = connect(&format!("{proxy}/ws/chat?token=good-token")).await;
    client.send(Message::text("close-me")).await.unwrap();
    let (close, _) = close_of(&mut client).await;
    assert_eq!(close, Some((4002, "server bye".to_owned())));
}

#[tokio::test]
async fn the_subprotocol_chosen_by_the_upstream_reaches_the_client() {
    let upstream = upstream().await;
    let proxy = proxy(&upstream.url).await;
    // The upstream picks the second offer; a proxy answering on its own
    // behalf would have picked the first.
    let (mut client, response) = connect_with(
        &format!("{proxy}/ws/chat?token=good-token"),
        &[("sec-websocket-protocol", "other.v0, confab.compact.v1")],
    )
    .await;
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        COMPACT
    );
    client.send(Message::text("hi")).await.unwrap();
    assert_eq!(next_data(&mut client).await, Message::text("hi"));
    assert_eq!(
        upstream.seen()[0].offered_protocols.as_deref(),
        Some("other.v0, confab.compact.v1")
    );
}

#[tokio::test]
async fn trace_paths_are_relayed_too() {
    let upstream = upstream().await;
    let proxy = proxy(&upstream.url).await;
    let mut client = connect(&format!("{proxy}/ws/trace/math?token=good-token&since=5")).await;
    client.send(Message::text("ping?")).await.unwrap();
    assert_eq!(next_data(&mut client).await, Message::text("ping?"));
    assert_eq!(upstream.seen()[0].uri, "/ws/trace/math?since=5");
}

#[tokio::test]
async fn a_missing_token_closes_with_4401() {
    let upstream = upstream().await;
    let proxy = proxy(&upstream.url).await;
    let mut client = connect(&format!("{proxy}/ws/chat")).await;
    let (close, _) = close_of(&mut client).await;
    assert_eq!(close.map(|c| c.0), Some(4401));
    assert!(
        upstream.seen().is_empty(),
        "no upstream connection without a token"
    );
}

#[tokio::test]
async fn a_refused_token_closes_with_4401() {
    let upstream = upstream().await;
    let proxy = proxy(&upstream.url).await;
    let mut client = connect(&format!("{proxy}/ws/chat?token=stolen")).await;
    let (close, _) = close_of(&mut client).await;
    assert_eq!(close.map(|c| c.0), Some(4401));
    assert_eq!(
        upstream.seen()[0].authorization.as_deref(),
        Some("Bearer stolen")
    );
}

#[tokio::test]
async fn a_refused_client_that_offered_a_subprotocol_still_reads_4401() {
    let upstream = upstream().await;
    let proxy = proxy(&upstream.url).await;
    // tungstenite, like a browser, fails a handshake that selects none of
    // the offered subprotocols; this one completes.
    let (mut client, response) = connect_with(
        &format!("{proxy}/ws/chat?token=stolen"),
        &[("sec-websocket-protocol", COMPACT)],
    )
    .await;
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        COMPACT
    );
    let (close, _) = close_of(&mut client).await;
    assert_eq!(close.map(|c| c.0), Some(4401));
}

#[tokio::test]
async fn an_unreachable_upstream_sends_an_error_frame_then_closes_1011() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = proxy(&format!("ws://127.0.0.1:{port}")).await;
    // A chat socket in the default dialect, seed 001's: the error is a text.
    let mut client = connect(&format!("{proxy}/ws/chat?token=good-token")).await;
    let frame = error_frame_then_1011(&mut client).await;
    assert_eq!(frame["type"], "error");
    assert_eq!(frame["error"], "the gateway is unreachable");
    assert_eq!(frame["code"], "upstream_unavailable");
    // The envelope dialect, asked for: an envelope frame.
    let mut client = connect(&format!(
        "{proxy}/ws/chat?dialect=envelope&token=good-token"
    ))
    .await;
    let frame = error_frame_then_1011(&mut client).await;
    assert_eq!(frame["type"], "error");
    assert_eq!(frame["error"]["code"], "upstream_unavailable");
    assert_eq!(frame["data"]["message"], "the gateway is unreachable");
    assert!(frame["timestamp"].is_string(), "{frame}");
    // A trace socket.
    let mut client = connect(&format!("{proxy}/ws/trace/math?token=good-token")).await;
    let frame = error_frame_then_1011(&mut client).await;
    assert_eq!(frame["error"]["code"], "upstream_unavailable");
}

/// The one error frame before a close with 1011.
async fn error_frame_then_1011(client: &mut Client) -> serde_json::Value {
    let (close, before) = close_of(client).await;
    assert_eq!(close.map(|c| c.0), Some(1011));
    let [Message::Text(text)] = before.as_slice() else {
        panic!("expected one error frame, got {before:?}");
    };
    serde_json::from_str(text.as_str()).unwrap()
}

#[tokio::test]
async fn an_upstream_that_never_answers_sends_an_error_frame_then_closes_1011() {
    // A listener that never accepts: the kernel completes the connection,
    // nobody answers the handshake.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_url = format!("ws://{}", silent.local_addr().unwrap());
    let proxy = proxy_with(&upstream_url, |s| s.upstream.connect_timeout_secs = 1).await;
    let mut client = connect(&format!("{proxy}/ws/chat?token=good-token")).await;
    let frame = error_frame_then_1011(&mut client).await;
    assert_eq!(frame["code"], "upstream_unavailable");
    assert_eq!(frame["error"], "the gateway did not answer in time");
}

#[tokio::test]
async fn an_upstream_refusal_other_than_unauthorized_sends_an_error_frame_then_closes_1011() {
    let upstream = upstream().await;
    let proxy = proxy(&upstream.url).await;
    let mut client = connect(&format!("{proxy}/ws/trace/missing?token=good-token")).await;
    let (close, before) = close_of(&mut client).await;
    assert_eq!(close.map(|c| c.0), Some(1011));
    let [Message::Text(text)] = before.as_slice() else {
        panic!("expected one error frame, got {before:?}");
    };
    let frame: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
    assert_eq!(frame["error"]["code"], "upstream_unavailable");
    assert_eq!(
        frame["error"]["message"],
        "the gateway refused the connection (status 404)"
    );
}

#[tokio::test]
async fn a_chat_client_that_names_no_dialect_is_given_the_configured_default() {
    let upstream = upstream().await;
    let compact = proxy(&upstream.url).await;
    let envelope = proxy_with(&upstream.url, |s| {
        s.chat.default_dialect = dashboard_proxy::Dialect::Envelope
    })
    .await;
    for url in [
        format!("{compact}/ws/chat?token=good-token"),
        // An empty dialect names none; it is not passed on twice.
        format!("{compact}/ws/chat?dialect=&token=good-token"),
        format!("{envelope}/ws/chat?token=good-token&conversation_id=conv-1"),
    ] {
        let mut client = connect(&url).await;
        client.send(Message::text("hello")).await.unwrap();
        assert_eq!(next_data(&mut client).await, Message::text("hello"));
    }
    let uris: Vec<String> = upstream.seen().into_iter().map(|s| s.uri).collect();
    assert_eq!(
        uris,
        [
            "/ws/chat?dialect=compact",
            "/ws/chat?dialect=compact",
            "/ws/chat?conversation_id=conv-1&dialect=envelope",
        ]
    );
}

#[tokio::test]
async fn a_dialect_the_client_names_is_left_as_it_is() {
    let upstream = upstream().await;
    let proxy = proxy(&upstream.url).await;
    for dialect in ["envelope", "compact"] {
        let mut client = connect(&format!(
            "{proxy}/ws/chat?dialect={dialect}&token=good-token"
        ))
        .await;
        client.send(Message::text("hello")).await.unwrap();
        next_data(&mut client).await;
    }
    // Offering the compact subprotocol names the dialect too.
    let (mut client, response) = connect_with(
        &format!("{proxy}/ws/chat?token=good-token"),
        &[("sec-websocket-protocol", COMPACT)],
    )
    .await;
    assert_eq!(response.headers()["sec-websocket-protocol"], COMPACT);
    client.send(Message::text("hello")).await.unwrap();
    next_data(&mut client).await;
    // Trace sockets have no dialect.
    let mut client = connect(&format!("{proxy}/ws/trace/math?token=good-token")).await;
    client.send(Message::text("hello")).await.unwrap();
    next_data(&mut client).await;
    let uris: Vec<String> = upstream.seen().into_iter().map(|s| s.uri).collect();
    assert_eq!(
        uris,
        [
            "/ws/chat?dialect=envelope",
            "/ws/chat?dialect=compact",
            "/ws/chat",
            "/ws/trace/math",
        ]
    );
}

#[test]
fn a_default_dialect_that_does_not_exist_is_refused() {
    let chat = |dialect: &str| {
        serde_json::from_value::<dashboard_proxy::ChatSettings>(serde_json::json!({
            "path": "/ws/chat",
            "default_dialect": dialect,
        }))
    };
    assert!(chat("compact").is_ok());
    assert!(chat("envelope").is_ok());
    for bad in ["", "Compact", "binary"] {
        assert!(chat(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn a_request_that_is_not_a_websocket_upgrade_is_a_400() {
    let upstream = upstream().await;
    let proxy = proxy(&upstream.url).await;
    let url = format!(
        "{}/ws/chat?token=good-token",
        proxy.replace("ws://", "http://")
    );
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_websocket");
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn a_client_that_goes_away_ends_the_upstream_connection() {
    let upstream = upstream().await;
    let proxy = proxy(&upstream.url).await;
    let mut client = connect(&format!("{proxy}/ws/chat?token=good-token")).await;
    client.send(Message::text("hello")).await.unwrap();
    assert_eq!(next_data(&mut client).await, Message::text("hello"));

    let ended = upstream.shared.ended.notified();
    drop(client);
    tokio::time::timeout(Duration::from_secs(30), ended)
        .await
        .unwrap_or_else(|_| panic!("the upstream connection never ended"));
    assert!(upstream.shared.ended_without_close.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_client_that_leaves_is_let_go_even_if_the_upstream_never_closes() {
    let upstream = upstream().await;
    let proxy = proxy(&upstream.url).await;
    let mut client = connect(&format!("{proxy}/ws/chat?token=good-token")).await;
    // The upstream stops reading, so it never learns that the client left.
    client.send(Message::text("stall")).await.unwrap();
    let tcp = client.get_mut();
    std::future::poll_fn(|cx| Pin::new(&mut *tcp).poll_shutdown(cx))
        .await
        .unwrap();
    // Ended by the proxy's grace period (ws_tunnel::CLOSE_GRACE), not the upstream.
    let ending = tokio::time::timeout(Duration::from_secs(30), client.next())
        .await
        .unwrap_or_else(|_| panic!("the client connection was kept open"));
    assert!(
        !matches!(ending, Some(Ok(_))),
        "expected the connection to end, got {ending:?}"
    );
}

#[tokio::test]
async fn an_upstream_that_goes_away_ends_the_client_connection() {
    let upstream = upstream().await;
    let proxy = proxy(&upstream.url).await;
    let mut client = connect(&format!("{proxy}/ws/chat?token=good-token")).await;
    client.send(Message::text("drop-me")).await.unwrap();
    let ending = tokio::time::timeout(Duration::from_secs(30), client.next())
        .await
        .unwrap_or_else(|_| panic!("the client connection never ended"));
    assert!(
        !matches!(ending, Some(Ok(_))),
        "expected the connection to end, got {ending:?}"
    );
}

/// The most one side may have handed to its socket while the other reads
/// nothing, when nothing but kernel buffers and the proxy's small ones hold
/// the bytes. On the stalled path the proxy's receive buffer from the writer
/// and its send buffer to the reader grow by autotuning up to the maxima of
/// `net.ipv4.tcp_rmem` and `tcp_wmem` (32 MiB and 4 MiB on the CI machine; a
/// run there stays near 5-12 MiB). 1 MiB covers the rest: the test's own
/// small kernel buffers, the proxy's 16 KiB read and 32 KiB of actix buffer
/// or payload, tungstenite's read-ahead.
fn stalled_flood_bound() -> u64 {
    let max = |sysctl: &str, fallback: u64| {
        std::fs::read_to_string(sysctl)
            .ok()
            .and_then(|v| v.split_whitespace().nth(2)?.parse().ok())
            .unwrap_or(fallback)
    };
    max("/proc/sys/net/ipv4/tcp_rmem", 6 << 20)
        + max("/proc/sys/net/ipv4/tcp_wmem", 4 << 20)
        + (1 << 20)
}

/// How many messages a flood has: at least 64 MiB, and twice the stalled
/// bound, so that a relay with an unbounded queue (which takes the whole
/// flood) fails the bound by a wide margin.
fn flood_messages() -> usize {
    let bytes = (64 << 20).max(2 * stalled_flood_bound() as usize);
    bytes.div_ceil(FLOOD_MESSAGE_BYTES)
}

#[tokio::test]
async fn a_client_that_stops_reading_holds_the_upstream_back_instead_of_growing_memory() {
    let upstream = upstream().await;
    let proxy = proxy(&upstream.url).await;
    let mut client = connect_with_small_buffers(&format!("{proxy}/ws/chat?token=good-token")).await;
    client.send(Message::text("flood")).await.unwrap();

    // The upstream tries to write for a while; the client reads nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let written = upstream.shared.flood_written.load(Ordering::SeqCst);
    eprintln!("the upstream wrote {written} bytes while the client read nothing");
    assert!(
        written <= stalled_flood_bound(),
        "the upstream wrote {written} bytes to a client that read nothing"
    );

    for i in 0..flood_messages() {
        let Message::Binary(bytes) = next_data(&mut client).await else {
            panic!("message {i} is not binary");
        };
        assert!(
            bytes.as_ref() == flood_message(i).as_slice(),
            "message {i} arrived damaged or out of order"
        );
    }
    assert_eq!(
        upstream.shared.flood_written.load(Ordering::SeqCst),
        (flood_messages() * FLOOD_MESSAGE_BYTES) as u64
    );
}

#[tokio::test]
async fn an_upstream_that_stops_reading_holds_the_client_back_instead_of_growing_memory() {
    let upstream = upstream().await;
    let proxy = proxy(&upstream.url).await;
    let mut client = connect_with_small_buffers(&format!("{proxy}/ws/chat?token=good-token")).await;
    client.send(Message::text("stall")).await.unwrap();

    let sent = Arc::new(AtomicU64::new(0));
    let sending = tokio::spawn({
        let sent = sent.clone();
        async move {
            for i in 0..flood_messages() {
                client
                    .send(Message::binary(flood_message(i)))
                    .await
                    .unwrap();
                sent.fetch_add(FLOOD_MESSAGE_BYTES as u64, Ordering::SeqCst);
            }
            client
        }
    });

    // The client tries to write for a while; the upstream reads nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stalled = sent.load(Ordering::SeqCst);
    eprintln!("the client sent {stalled} bytes while the upstream read nothing");
    assert!(
        stalled <= stalled_flood_bound(),
        "the client sent {stalled} bytes to an upstream that read nothing"
    );

    upstream.shared.resume.notify_one();
    let mut client = sending.await.unwrap();
    client.send(Message::text("done?")).await.unwrap();
    assert_eq!(next_data(&mut client).await, Message::text("done?"));
    assert_eq!(
        upstream.shared.flood_read.load(Ordering::SeqCst),
        (flood_messages() * FLOOD_MESSAGE_BYTES) as u64,
        "the upstream read every message intact and in order"
    );
}
