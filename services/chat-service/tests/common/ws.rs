//! A WebSocket client of `/ws/chat`, calling as the gateway does.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{SERVICE_TOKEN, TestApp};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the server sent next.
#[derive(Debug)]
pub enum Received {
    Json(Value),
    /// The close code, when the server closed.
    Closed(Option<u16>),
}

/// `/ws/chat{query}` as `user`.
pub async fn open(chat: &TestApp, user: &str, query: &str) -> Socket {
    let url = format!("{}/ws/chat{query}", chat.url.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("x-service-token", SERVICE_TOKEN.parse().unwrap());
    headers.insert("x-user-id", user.parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

pub async fn send_text(ws: &mut Socket, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
}

/// The next text frame as JSON, or the close; pings are skipped.
pub async fn receive(ws: &mut Socket) -> Received {
    loop {
        // A frame within 30 s, or the test fails.
        let next = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .unwrap();
        match next {
            Some(Ok(Message::Text(text))) => {
                return Received::Json(serde_json::from_str(&text).unwrap());
            }
            Some(Ok(Message::Close(frame))) => {
                return Received::Closed(frame.map(|f| u16::from(f.code)));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Received::Closed(None),
        }
    }
}

/// The next text frame as JSON; panics on a close.
pub async fn next_json(ws: &mut Socket) -> Value {
    match receive(ws).await {
        Received::Json(frame) => frame,
        Received::Closed(code) => panic!("the socket closed ({code:?})"),
    }
}
