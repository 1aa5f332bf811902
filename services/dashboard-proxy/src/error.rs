//! The two refusals dashboard-proxy answers over HTTP, as a [`Refusal`].
//! Everything else it has to say goes over the WebSocket, as a close code
//! (`relay`).

use actix_web::http::StatusCode;
use confab_kit::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("this path only accepts a WebSocket upgrade")]
    NotWebSocket,
    #[error("{0}")]
    BadHandshake(String),
}

impl Refusal for RelayError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            RelayError::NotWebSocket => (StatusCode::BAD_REQUEST, "not_websocket"),
            RelayError::BadHandshake(_) => (StatusCode::BAD_REQUEST, "bad_websocket_handshake"),
        }
    }
}
