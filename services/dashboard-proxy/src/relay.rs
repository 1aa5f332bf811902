//! One relayed WebSocket: client ⇄ dashboard-proxy ⇄ gateway.
//!
//! The client's `?token=` becomes `Authorization: Bearer` on the upstream
//! handshake (browsers cannot set headers on a WebSocket). The client's
//! connection is accepted first so that a missing or refused token can be
//! reported with close code 4401, which a browser can read, rather than a
//! failed handshake, which it cannot.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Session};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as UpCloseCode;
use tokio_tungstenite::tungstenite::{self, Message as UpMessage};

use crate::RelayState;

/// Close code for a missing or refused token (DESIGN §9).
pub const CLOSE_UNAUTHORIZED: u16 = 4401;

pub async fn relay(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<RelayState>,
) -> actix_web::Result<HttpResponse> {
    let (token, query) = split_token(req.query_string());
    let mut url = format!("{}{}", state.upstream_url.trim_end_matches('/'), req.path());
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query);
    }
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let stream = stream
        .max_frame_size(state.max_message_bytes)
        .aggregate_continuations()
        .max_continuation_size(state.max_message_bytes);
    let state = state.into_inner();
    actix_web::rt::spawn(async move {
        let Some(token) = token else {
            close(session, CLOSE_UNAUTHORIZED, "missing token").await;
            return;
        };
        match connect(&url, &token, state.connect_timeout).await {
            Ok(upstream) => pump(session, stream, upstream).await,
            Err(Refusal::Unauthorized) => close(session, CLOSE_UNAUTHORIZED, "token refused").await,
            Err(Refusal::Unreachable(reason)) => {
                tracing::warn!(url = %url, reason = %reason, "upstream WebSocket unreachable");
                let mut session = session;
                let frame = json!({"type": "error", "error": {"code": "upstream_unavailable", "message": "the gateway is unreachable"}});
                let _ = session.text(frame.to_string()).await;
                close(session, 1011, "upstream unavailable").await;
            }
        }
    });
    Ok(response)
}

enum Refusal {
    Unauthorized,
    Unreachable(String),
}

type Upstream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, token: &str, timeout: Duration) -> Result<Upstream, Refusal> {
    let mut request = url
        .into_client_request()
        .map_err(|e| Refusal::Unreachable(e.to_string()))?;
    let bearer =
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| Refusal::Unauthorized)?;
    request.headers_mut().insert("authorization", bearer);
    match tokio::time::timeout(timeout, tokio_tungstenite::connect_async(request)).await {
        Err(_) => Err(Refusal::Unreachable("handshake timed out".into())),
        Ok(Ok((stream, _))) => Ok(stream),
        Ok(Err(tungstenite::Error::Http(response)))
            if matches!(response.status().as_u16(), 401 | 403) =>
        {
            Err(Refusal::Unauthorized)
        }
        Ok(Err(err)) => Err(Refusal::Unreachable(err.to_string())),
    }
}

/// Relays frames both ways until either side closes; the close code and
/// reason of one side are passed to the other.
async fn pump(
    mut client: Session,
    mut from_client: actix_ws::AggregatedMessageStream,
    upstream: Upstream,
) {
    let (mut to_upstream, mut from_upstream) = upstream.split();
    loop {
        tokio::select! {
            message = from_client.next() => match message {
                Some(Ok(AggregatedMessage::Text(text))) => {
                    if to_upstream.send(UpMessage::text(text.to_string())).await.is_err() { break; }
                }
                Some(Ok(AggregatedMessage::Binary(bytes))) => {
                    if to_upstream.send(UpMessage::binary(bytes)).await.is_err() { break; }
                }
                Some(Ok(AggregatedMessage::Ping(bytes))) => {
                    if client.pong(&bytes).await.is_err() { break; }
                }
                Some(Ok(AggregatedMessage::Pong(_))) => {}
                Some(Ok(AggregatedMessage::Close(reason))) => {
                    let frame = reason.map(|r| CloseFrame {
                        code: UpCloseCode::from(u16::from(r.code)),
                        reason: r.description.unwrap_or_default().into(),
                    });
                    let _ = to_upstream.send(UpMessage::Close(frame)).await;
                    let _ = client.close(None).await;
                    return;
                }
                Some(Err(err)) => {
                    tracing::debug!(error = %err, "client WebSocket error");
                    let _ = to_upstream.send(UpMessage::Close(Some(CloseFrame { code: UpCloseCode::Protocol, reason: "client protocol error".into() }))).await;
                    close(client, 1002, "protocol error").await;
                    return;
                }
                None => {
                    let _ = to_upstream.send(UpMessage::Close(None)).await;
                    return;
                }
            },
            message = from_upstream.next() => match message {
                Some(Ok(UpMessage::Text(text))) => {
                    if client.text(text.to_string()).await.is_err() { break; }
                }
                Some(Ok(UpMessage::Binary(bytes))) => {
                    if client.binary(bytes).await.is_err() { break; }
                }
                Some(Ok(UpMessage::Ping(_) | UpMessage::Pong(_) | UpMessage::Frame(_))) => {}
                Some(Ok(UpMessage::Close(frame))) => {
                    match frame {
                        Some(frame) => close(client, u16::from(frame.code), frame.reason.as_str()).await,
                        None => { let _ = client.close(None).await; }
                    }
                    return;
                }
                Some(Err(err)) => {
                    tracing::debug!(error = %err, "upstream WebSocket error");
                    close(client, 1011, "upstream connection lost").await;
                    return;
                }
                None => {
                    close(client, 1011, "upstream connection lost").await;
                    return;
                }
            },
        }
    }
    let _ = to_upstream.send(UpMessage::Close(None)).await;
    let _ = client.close(None).await;
}

async fn close(session: Session, code: u16, reason: &str) {
    let _ = session
        .close(Some(CloseReason {
            code: CloseCode::from(code),
            description: Some(reason.to_owned()),
        }))
        .await;
}

/// Takes `token` out of a query string; the rest is passed upstream.
fn split_token(query: &str) -> (Option<String>, String) {
    let mut token = None;
    let mut rest = Vec::new();
    for (key, value) in url_pairs(query) {
        if key == "token" {
            token = Some(value).filter(|v| !v.is_empty());
        } else {
            rest.push(serde_urlencoded::to_string([(key, value)]).unwrap_or_default());
        }
    }
    (token, rest.join("&"))
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_taken_out_of_the_query() {
        let (token, rest) = split_token("token=abc.def&conversation_id=conv-1&dialect=compact");
        assert_eq!(token.as_deref(), Some("abc.def"));
        assert_eq!(rest, "conversation_id=conv-1&dialect=compact");
        assert_eq!(split_token("token=").0, None);
        assert_eq!(split_token("").1, "");
    }
}
