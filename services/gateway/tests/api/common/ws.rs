//! A WebSocket client (tokio-tungstenite) for tests through the gateway and
//! dashboard-proxy.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
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

/// Opens `url` (http:// is turned into ws://) with an optional bearer token.
pub async fn try_connect(url: &str, bearer: Option<&str>) -> Result<Ws, Error> {
    let mut request = url.replacen("http", "ws", 1).into_client_request().unwrap();
    if let Some(token) = bearer {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let (stream, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(Ws { stream })
}

/// Opens `url` with the given handshake headers (a browser's `Cookie` and
/// `Origin`, say).
pub async fn try_connect_with(url: &str, headers: &[(&str, &str)]) -> Result<Ws, Error> {
    let mut request = url.replacen("http", "ws", 1).into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().append(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let (stream, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(Ws { stream })
}

pub async fn connect(url: &str, bearer: Option<&str>) -> Ws {
    try_connect(url, bearer).await.unwrap()
}

impl Ws {
    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(Message::text(frame.to_string()))
            .await
            .unwrap();
    }

    pub async fn send_text(&mut self, text: String) {
        self.stream.send(Message::text(text)).await.unwrap();
    }

    pub async fn close(&mut self, code: u16, reason: &str) {
        self.stream
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: reason.to_owned().into(),
            })))
            .await
            .unwrap();
    }

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

    /// The close code the server ends with, skipping frames before it.
    pub async fn closed(&mut self) -> Option<(u16, String)> {
        loop {
            if let Frame::Closed(close) = self.frame().await {
                return close;
            }
        }
    }
}
