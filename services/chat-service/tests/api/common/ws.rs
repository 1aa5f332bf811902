//! A real WebSocket client of `/ws/chat`, calling as the gateway does.

use confab_kit::testing::ws;
pub use confab_kit::testing::ws::{Frame, Ws};
use serde_json::Value;
use tokio_tungstenite::tungstenite::handshake::client::Response;

use super::{SERVICE_TOKEN, TestApp};

/// The subprotocol of the compact dialect.
pub const COMPACT: &str = "confab.compact.v1";

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
        let mut headers = Vec::new();
        if let Some(user) = user {
            headers.extend([("x-service-token", SERVICE_TOKEN), ("x-user-id", user)]);
        }
        if let Some(protocol) = protocol {
            headers.push(("sec-websocket-protocol", protocol));
        }
        ws::open(&format!("{}/ws/chat{query}", self.url), &headers).await
    }
}

/// The envelope dialect's exchanges, on kit's socket.
pub trait Envelope {
    /// The frames of a turn, up to its final `assistant_response`.
    async fn turn(&mut self) -> Vec<Value>;

    /// `init_session`; the `session_ready` frame (after checking that
    /// `chat_history` follows it).
    async fn init(&mut self, data: Value) -> Value;
}

impl Envelope for Ws {
    async fn turn(&mut self) -> Vec<Value> {
        self.until(|f| f["type"] == "assistant_response" && f["data"]["chunk"] == false)
            .await
    }

    async fn init(&mut self, data: Value) -> Value {
        self.send(serde_json::json!({"type": "init_session", "data": data}))
            .await;
        let ready = self.json().await;
        assert_eq!(ready["type"], "session_ready", "{ready}");
        let history = self.json().await;
        assert_eq!(history["type"], "chat_history", "{history}");
        ready
    }
}
