//! One relayed WebSocket: client ⇄ dashboard-proxy ⇄ gateway.
//!
//! The client's `?token=` becomes `Authorization: Bearer` on the upstream
//! handshake (browsers cannot set headers on a WebSocket); once the gateway
//! switches protocols, the connection is a byte tunnel
//! ([`confab_kit::ws_tunnel`]), so frames, fragments, pings, close codes and
//! the negotiated subprotocol pass unchanged both ways.
//!
//! On the chat path a client that names no dialect (no `?dialect=`, no
//! `confab.compact.v1` subprotocol offered) is given `[chat]
//! default_dialect`, asked of the gateway as `?dialect=`: seed 001's
//! compact frames unless configured otherwise.
//!
//! When no tunnel can be opened, the client's WebSocket is accepted here so
//! that the reason reaches it as something a browser can read: close code 4401
//! for a missing or refused token, or an error frame then 1011 when the
//! gateway is unavailable. A failed handshake would only tell it "error".
//! The error frame is in the chat socket's dialect: `{"type":"error",
//! "error":"<message>","code"}` in the compact one (the seed reads a text),
//! an envelope frame in the other; on other paths
//! `{"type":"error","error":{"code","message"}}`.

use actix_web::http::header::SEC_WEBSOCKET_PROTOCOL;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Session};
use confab_kit::ApiError;
use confab_kit::server;
use confab_kit::trace_context::TRACEPARENT;
use confab_kit::ws_tunnel::{self, HandshakeError, split_token};
use confab_protocol::ws::{compact, envelope};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

use crate::error::RelayError;
use crate::{Dialect, RelayState};

/// The subprotocol that asks for the compact dialect.
pub const COMPACT_PROTOCOL: &str = "confab.compact.v1";

/// Close code for a missing or refused token (DESIGN §9).
pub const CLOSE_UNAUTHORIZED: u16 = 4401;

/// Close code after the error frame when the gateway is unavailable: the
/// standard "internal error", since the client did nothing wrong.
pub const CLOSE_UNAVAILABLE: u16 = 1011;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// `GET <relay path>?token=…`: a tunnel to the same path on the gateway, or a
/// WebSocket accepted here only to say why there is none.
pub async fn relay(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<RelayState>,
) -> Result<HttpResponse, ApiError> {
    if !ws_tunnel::is_upgrade(&req) {
        return Err(RelayError::NotWebSocket.into());
    }
    let (token, mut query) = split_token(req.query_string());
    let dialect = (req.path() == state.chat.path).then(|| chat_dialect(&req, &mut query, &state));
    let Some(token) = token else {
        return accept_and_close(&req, payload, Ending::Unauthorized("missing token"));
    };
    // A token that cannot be a header value cannot be a valid token either.
    let Ok(bearer) = HeaderValue::from_str(&format!("Bearer {token}")) else {
        return accept_and_close(&req, payload, Ending::Unauthorized("token refused"));
    };
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, bearer);
    // The client's id, or the one made up for this request and in our logs.
    if let Some(id) = server::request_id(&req)
        && let Ok(id) = HeaderValue::from_str(&id)
    {
        headers.insert(REQUEST_ID, id);
    }
    // This hop of the client's trace (or a new one), as every service passes on.
    if let Some(traceparent) = server::traceparent(&req)
        && let Ok(traceparent) = HeaderValue::from_str(&traceparent)
    {
        headers.insert(HeaderName::from_static(TRACEPARENT), traceparent);
    }
    let mut url = format!("{}{}", state.upstream_url.trim_end_matches('/'), req.path());
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query);
    }
    match ws_tunnel::connect(&state.http, &url, &req, headers, state.connect_timeout).await {
        Ok(upstream) => Ok(upstream.into_response(payload)),
        Err(HandshakeError::Refused {
            status: 401 | 403, ..
        }) => accept_and_close(&req, payload, Ending::Unauthorized("token refused")),
        Err(err) => {
            tracing::warn!(url = %url, error = %err, "upstream WebSocket unavailable");
            let message = match err {
                HandshakeError::Refused { status, .. } => {
                    format!("the gateway refused the connection (status {status})")
                }
                HandshakeError::TimedOut => "the gateway did not answer in time".to_owned(),
                HandshakeError::NotConnected(_) | HandshakeError::Unreachable(_) => {
                    "the gateway is unreachable".to_owned()
                }
            };
            accept_and_close(&req, payload, Ending::Unavailable { message, dialect })
        }
    }
}

/// The dialect of a chat socket: the one the client names (`?dialect=`, or
/// the compact subprotocol offered), else the configured default, which is
/// then added to the forwarded `query`.
fn chat_dialect(req: &HttpRequest, query: &mut String, state: &RelayState) -> Dialect {
    let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let named = pairs
        .iter()
        .find(|(key, value)| key == "dialect" && !value.is_empty())
        .map(|(_, value)| value.clone());
    match named {
        // As chat-service reads it: anything but compact is the envelope.
        Some(named) if named == Dialect::Compact.as_str() => Dialect::Compact,
        Some(_) => Dialect::Envelope,
        None if offered_protocols(req).iter().any(|p| p == COMPACT_PROTOCOL) => Dialect::Compact,
        None => {
            let dialect = state.chat.default_dialect;
            // An empty `dialect=` names nothing; one is enough.
            pairs.retain(|(key, _)| key != "dialect");
            pairs.push(("dialect".to_owned(), dialect.as_str().to_owned()));
            *query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
            dialect
        }
    }
}

/// Why a client's WebSocket is accepted here only to be closed.
enum Ending {
    Unauthorized(&'static str),
    Unavailable {
        message: String,
        /// The chat socket's dialect; `None` on other paths.
        dialect: Option<Dialect>,
    },
}

/// Accepts the client's WebSocket, tells it why there is no tunnel, and
/// closes. The handshake echoes the client's first offered subprotocol: a
/// browser that offered one fails a handshake that selects none, and would
/// then never see the close code.
fn accept_and_close(
    req: &HttpRequest,
    payload: web::Payload,
    ending: Ending,
) -> Result<HttpResponse, ApiError> {
    let offered = offered_protocols(req);
    let offered: Vec<&str> = offered.iter().map(String::as_str).collect();
    let (response, mut session, stream) = actix_ws::handle_with_protocols(req, payload, &offered)
        .map_err(|e| RelayError::BadHandshake(e.to_string()))?;
    actix_web::rt::spawn(async move {
        match ending {
            Ending::Unauthorized(reason) => close(session, CLOSE_UNAUTHORIZED, reason).await,
            Ending::Unavailable { message, dialect } => {
                let frame = unavailable_frame(&message, dialect);
                if session.text(frame).await.is_ok() {
                    close(session, CLOSE_UNAVAILABLE, "upstream unavailable").await;
                }
            }
        }
        // Nothing the client sends is read; its messages are dropped with the
        // connection once the close frame is out.
        drop(stream);
    });
    Ok(response)
}

/// The error frame that says the gateway is unavailable, in the socket's
/// dialect.
fn unavailable_frame(message: &str, dialect: Option<Dialect>) -> String {
    const CODE: &str = "upstream_unavailable";
    match dialect {
        Some(Dialect::Compact) => compact::ServerFrame::Error {
            error: message.to_owned(),
            code: Some(CODE.to_owned()),
            retry_after: None,
        }
        .to_text(),
        Some(Dialect::Envelope) => envelope::ServerFrame::new(
            envelope::ServerEvent::Error(envelope::FrameError::new(CODE, message)),
            None,
            chrono::Utc::now().to_rfc3339(),
        )
        .to_text(),
        None => json!({"type": "error", "error": {"code": CODE, "message": message}}).to_string(),
    }
}

/// The subprotocols the client offered, in its order of preference.
fn offered_protocols(req: &HttpRequest) -> Vec<String> {
    req.headers()
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn close(session: Session, code: u16, reason: &str) {
    let _ = session
        .close(Some(CloseReason {
            code: CloseCode::from(code),
            description: Some(reason.to_owned()),
        }))
        .await;
}
