//! dashboard-proxy against a real WebSocket server started by the test, which
//! stands where the gateway would be: it records the handshake, echoes
//! messages, and closes or refuses on command.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

use confab_kit::settings::ServiceSettings;
use std::sync::{Arc, Mutex};

use confab_kit::testing::init_test_tracing;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// What the upstream saw of one handshake.
#[derive(Debug, Clone, Default)]
struct Seen {
    authorization: Option<String>,
    uri: String,
}

/// An upstream that accepts `Bearer good-token` only, echoes text and binary,
/// and on the text `close-me` closes with 4000 "bye".
async fn upstream() -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                #[expect(
                    clippy::result_large_err,
                    reason = "the signature tungstenite's handshake callback requires"
                )]
                let callback = |req: &Request, res: Response| -> Result<Response, ErrorResponse> {
                    let authorization = req
                        .headers()
                        .get("authorization")
                        .map(|v| v.to_str().unwrap().to_owned());
                    log.lock().unwrap().push(Seen {
                        authorization: authorization.clone(),
                        uri: req.uri().to_string(),
                    });
                    if authorization.as_deref() == Some("Bearer good-token") {
                        Ok(res)
                    } else {
                        let mut refusal = ErrorResponse::new(Some("unauthorized".into()));
                        *refusal.status_mut() = StatusCode::UNAUTHORIZED;
                        Err(refusal)
                    }
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    match message {
                        Message::Text(text) if text.as_str() == "close-me" => {
                            let frame = CloseFrame {
                                code: CloseCode::from(4000),
                                reason: "bye".into(),
                            };
                            let _ = ws.close(Some(frame)).await;
                        }
                        Message::Text(_) | Message::Binary(_) => {
                            let _ = ws.send(message).await;
                        }
                        _ => {}
                    }
                }
            });
        }
    });
    (url, seen)
}

async fn proxy(upstream_url: &str) -> String {
    init_test_tracing();
    let mut settings = dashboard_proxy::Settings::defaults().unwrap();
    settings.server.port = 0;
    settings.upstream.url = upstream_url.to_owned();
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

#[tokio::test]
async fn the_token_becomes_a_bearer_header_and_frames_flow_both_ways() {
    let (upstream_url, seen) = upstream().await;
    let proxy = proxy(&upstream_url).await;
    let mut client = connect(&format!(
        "{proxy}/ws/chat?token=good-token&conversation_id=conv-1"
    ))
    .await;

    client.send(Message::text("hello")).await.unwrap();
    assert_eq!(
        client.next().await.unwrap().unwrap(),
        Message::text("hello")
    );
    client
        .send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(
        client.next().await.unwrap().unwrap(),
        Message::binary(vec![0u8, 1, 2, 255])
    );

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer good-token"));
    assert_eq!(
        seen[0].uri, "/ws/chat?conversation_id=conv-1",
        "the token is not passed on in the URL"
    );
}

#[tokio::test]
async fn trace_paths_are_relayed_too() {
    let (upstream_url, seen) = upstream().await;
    let proxy = proxy(&upstream_url).await;
    let mut client = connect(&format!("{proxy}/ws/trace/math?token=good-token&since=5")).await;
    client.send(Message::text("ping?")).await.unwrap();
    assert_eq!(
        client.next().await.unwrap().unwrap(),
        Message::text("ping?")
    );
    assert_eq!(seen.lock().unwrap()[0].uri, "/ws/trace/math?since=5");
}

#[tokio::test]
async fn a_close_from_the_upstream_reaches_the_client_with_its_code() {
    let (upstream_url, _) = upstream().await;
    let proxy = proxy(&upstream_url).await;
    let mut client = connect(&format!("{proxy}/ws/chat?token=good-token")).await;
    client.send(Message::text("close-me")).await.unwrap();
    let (close, _) = close_of(&mut client).await;
    assert_eq!(close, Some((4000, "bye".to_owned())));
}

#[tokio::test]
async fn a_missing_token_closes_with_4401() {
    let (upstream_url, seen) = upstream().await;
    let proxy = proxy(&upstream_url).await;
    let mut client = connect(&format!("{proxy}/ws/chat")).await;
    let (close, _) = close_of(&mut client).await;
    assert_eq!(close.map(|c| c.0), Some(4401));
    assert!(
        seen.lock().unwrap().is_empty(),
        "no upstream connection without a token"
    );
}

#[tokio::test]
async fn a_refused_token_closes_with_4401() {
    let (upstream_url, _) = upstream().await;
    let proxy = proxy(&upstream_url).await;
    let mut client = connect(&format!("{proxy}/ws/chat?token=stolen")).await;
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
    let mut client = connect(&format!("{proxy}/ws/chat?token=good-token")).await;
    let (close, before) = close_of(&mut client).await;
    assert_eq!(close.map(|c| c.0), Some(1011));
    let [Message::Text(text)] = before.as_slice() else {
        panic!("expected one error frame, got {before:?}");
    };
    let frame: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
    assert_eq!(frame["type"], "error");
    assert_eq!(frame["error"]["code"], "upstream_unavailable");
}
