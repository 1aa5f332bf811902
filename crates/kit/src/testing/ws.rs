//! A real WebSocket client (tokio-tungstenite) for tests of the services'
//! sockets, whichever service and dialect. Like a test, it panics on what
//! a test does not expect.
#![expect(
    clippy::unwrap_used,
    reason = "a test helper: an unexpected error fails the test loudly"
)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::http::HeaderName;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Longest wait for any one frame.
const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What the server sent next.
#[derive(Debug, PartialEq)]
pub enum Frame {
    Json(Value),
    /// The close code and reason, when the server closed with one.
    Closed(Option<(u16, String)>),
}

/// Opens `url` (`http` becomes `ws`) with the handshake `headers`; a
/// refusal comes back as the client's error, with the handshake's response
/// otherwise.
pub async fn open(url: &str, headers: &[(&str, &str)]) -> Result<(Ws, Response), Error> {
    let mut request = url.replacen("http", "ws", 1).into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let (stream, response) = tokio_tungstenite::connect_async(request).await?;
    Ok((Ws { stream }, response))
}

impl Ws {
    /// Sends `frame` as a text message.
    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    /// Sends `text` as it is, JSON or not.
    pub async fn send_text(&mut self, text: &str) {
        self.send_message(Message::text(text)).await;
    }

    /// Sends any WebSocket message (a binary frame, say).
    pub async fn send_message(&mut self, message: Message) {
        self.stream.send(message).await.unwrap();
    }

    pub async fn close(&mut self, code: u16, reason: &str) {
        self.send_message(Message::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.to_owned().into(),
        })))
        .await;
    }

    /// The next text frame, as JSON, or how the socket closed; other frames
    /// (pings) are skipped.
    pub async fn frame(&mut self) -> Frame {
        loop {
            let next = tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .unwrap_or_else(|_| panic!("no frame within {FRAME_TIMEOUT:?}"));
            match next {
                Some(Ok(Message::Text(text))) => {
                    return Frame::Json(serde_json::from_str(&text).unwrap());
                }
                Some(Ok(Message::Close(close))) => {
                    return Frame::Closed(
                        close.map(|c| (u16::from(c.code), c.reason.as_str().to_owned())),
                    );
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Frame::Closed(None),
            }
        }
    }

    /// The next frame, which must be JSON.
    pub async fn json(&mut self) -> Value {
        match self.frame().await {
            Frame::Json(value) => value,
            Frame::Closed(close) => panic!("closed ({close:?}) where a frame was expected"),
        }
    }

    /// Frames up to and including the first that `last` accepts.
    pub async fn until(&mut self, last: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            let frame = self.json().await;
            let stop = last(&frame);
            frames.push(frame);
            if stop {
                return frames;
            }
        }
    }

    /// How the server closes, skipping frames before that.
    pub async fn closed(&mut self) -> Option<(u16, String)> {
        loop {
            if let Frame::Closed(close) = self.frame().await {
                return close;
            }
        }
    }

    /// Drops the connection without a close frame, as a crashed client.
    pub fn abandon(self) {
        drop(self.stream);
    }
}
