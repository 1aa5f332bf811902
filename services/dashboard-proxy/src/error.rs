//! The two refusals dashboard-proxy answers over HTTP, mapped to their
//! status and code in one place. Everything else it has to say goes over
//! the WebSocket, as a close code (`relay`).

use actix_web::http::StatusCode;
use confab_kit::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("this path only accepts a WebSocket upgrade")]
    NotWebSocket,
    #[error("{0}")]
    BadHandshake(actix_web::Error),
}

impl From<RelayError> for ApiError {
    fn from(err: RelayError) -> Self {
        let code = match err {
            RelayError::NotWebSocket => "not_websocket",
            RelayError::BadHandshake(_) => "bad_websocket_handshake",
        };
        ApiError::new(StatusCode::BAD_REQUEST, code, err.to_string())
    }
}
