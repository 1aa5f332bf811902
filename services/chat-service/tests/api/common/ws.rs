//! A real WebSocket client of `/ws/chat`, calling as the gateway does.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{SERVICE_TOKEN, TestApp};

/// Longest wait for any one frame.
const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// The subprotocol of the compact dialect.
pub const COMPACT: &str = "confab.compact.v1";

pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What the server sent next.
#[derive(Debug)]
pub enum Frame {
    Json(Value),
    /// The close code and reason, when the server closed.
    Closed(Option<(u16, String)>),
}

impl TestApp {
    /// A socket of `user` on `/ws/chat{query}`, in the compact dialect
    /// when `compact`.
    pub async fn socket(&self, user: &str, query: &str, compact: bool) -> Ws {
        let protocol = compact.then_some(COMPACT);
        self.try_socket(Some(user), query, protocol)
            .await
            .unwrap()
            .0
    }

    /// The handshake of a socket on `/ws/chat{query}`: as `user` (none: no
    /// credentials at all), offering `protocol`; refusals come back as the
    /// client's error.
    pub async fn try_socket(
        &self,
        user: Option<&str>,
        query: &str,
        protocol: Option<&str>,
    ) -> Result<(Ws, Response), tokio_tungstenite::tungstenite::Error> {
        let url = format!("{}/ws/chat{query}", self.url.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        let headers = request.headers_mut();
        if let Some(user) = user {
            headers.insert("x-service-token", SERVICE_TOKEN.parse().unwrap());
            headers.insert("x-user-id", user.parse().unwrap());
        }
        if let Some(protocol) = protocol {
            headers.insert("sec-websocket-protocol", protocol.parse().unwrap());
        }
        let (stream, response) = tokio_tungstenite::connect_async(request).await?;
        Ok((Ws { stream }, response))
    }
}

impl Ws {
    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(Message::text(frame.to_string()))
            .await
            .unwrap();
    }

    /// Sends `text` as it is, JSON or not.
    pub async fn send_text(&mut self, text: &str) {
        self.send_message(Message::text(text)).await;
    }

    /// Sends any WebSocket message (a binary frame, say).
    pub async fn send_message(&mut self, message: Message) {
        self.stream.send(message).await.unwrap();
    }

    pub async fn frame(&mut self) -> Frame {
        loop {
            let next = tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .unwrap();
            match next {
                Some(Ok(Message::Text(text))) => {
                    return Frame::Json(serde_json::from_str(&text).unwrap());
                }
                Some(Ok(Message::Close(close))) => {
                    return Frame::Closed(close.map(|c| (u16::from(c.code), c.reason.to_string())));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Frame::Closed(None),
            }
        }
    }

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

    /// Envelope: the frames of a turn, up to its final `assistant_response`.
    pub async fn turn(&mut self) -> Vec<Value> {
        self.until(|f| f["type"] == "assistant_response" && f["data"]["chunk"] == false)
            .await
    }

    /// Envelope: `init_session`; the `session_ready` frame (after checking
    /// that `chat_history` follows it).
    pub async fn init(&mut self, data: Value) -> Value {
        self.send(serde_json::json!({"type": "init_session", "data": data}))
            .await;
        let ready = self.json().await;
        assert_eq!(ready["type"], "session_ready", "{ready}");
        let history = self.json().await;
        assert_eq!(history["type"], "chat_history", "{history}");
        ready
    }

    /// Drops the connection without a close frame, as a crashed client.
    pub fn abandon(self) {
        drop(self.stream);
    }
}
