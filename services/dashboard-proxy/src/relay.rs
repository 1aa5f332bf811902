//! One relayed WebSocket: client ⇄ dashboard-proxy ⇄ gateway.
//!
//! The client's `?token=` becomes `Authorization: Bearer` on the upstream
//! handshake (browsers cannot set headers on a WebSocket); once the gateway
//! switches protocols, the connection is a byte tunnel
//! ([`confab_kit::ws_tunnel`]), so frames, fragments, pings, close codes and
//! the negotiated subprotocol pass unchanged both ways.
//!
//! When no tunnel can be opened, the client's WebSocket is accepted here so
//! that the reason reaches it as something a browser can read: close code 4401
//! for a missing or refused token, or an error frame then 1011 when the
//! gateway is unavailable. A failed handshake would only tell it "error".

use actix_web::http::header::SEC_WEBSOCKET_PROTOCOL;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Session};
use confab_kit::ApiError;
use confab_kit::server;
use confab_kit::trace_context::TRACEPARENT;
use confab_kit::ws_tunnel::{self, HandshakeError, split_token};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

use crate::RelayState;

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
        return Err(ApiError::bad_request(
            "not_websocket",
            "this path only accepts a WebSocket upgrade",
        ));
    }
    let (token, query) = split_token(req.query_string());
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
                HandshakeError::Unreachable(_) => "the gateway is unreachable".to_owned(),
            };
            accept_and_close(&req, payload, Ending::Unavailable(message))
        }
    }
}

/// Why a client's WebSocket is accepted here only to be closed.
enum Ending {
    Unauthorized(&'static str),
    Unavailable(String),
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
    let (response, mut session, stream) =
        actix_ws::handle_with_protocols(req, payload, &offered)
            .map_err(|e| ApiError::bad_request("bad_websocket_handshake", e.to_string()))?;
    actix_web::rt::spawn(async move {
        match ending {
            Ending::Unauthorized(reason) => close(session, CLOSE_UNAUTHORIZED, reason).await,
            Ending::Unavailable(message) => {
                let frame = json!({
                    "type": "error",
                    "error": {"code": "upstream_unavailable", "message": message},
                });
                if session.text(frame.to_string()).await.is_ok() {
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
