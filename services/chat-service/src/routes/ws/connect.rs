//! The upgrade of `GET /ws/chat`: who calls, in which dialect, and which
//! conversation the socket starts attached to.
//!
//! Auth as for any request (service token and `X-User-Id` from the gateway,
//! or `Authorization: Bearer`, or `?token=`); without it the upgrade is
//! refused with 401 JSON. The dialect is compact when the client offers the
//! `confab.compact.v1` subprotocol (echoed in the handshake) or asks for
//! `?dialect=compact`; envelope otherwise.
//!
//! A user has at most `limits.sockets_per_user` chat sockets open; the one
//! over it is closed right after the handshake with 1008 and a reason that
//! names the limit (a browser cannot read a refused upgrade's status, but
//! it sees the close). The socket's place is given back when its task ends,
//! however it ends.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason};
use confab_kit::auth::Caller;
use serde::Deserialize;

use super::MAX_FRAME_BYTES;
use super::compact::Compact;
use super::envelope::Envelope;
use super::session::{self, Conn};
use crate::AppState;
use crate::a2a::client::Trace;

/// The subprotocol of the compact dialect.
pub const COMPACT_PROTOCOL: &str = "confab.compact.v1";

#[derive(Debug, Deserialize)]
pub struct ChatQuery {
    conversation_id: Option<String>,
    dialect: Option<String>,
    token: Option<String>,
    #[serde(default)]
    debug: bool,
}

pub async fn chat(
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<ChatQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let caller = Caller::from_request_or_token(&req, query.token.as_deref()).await?;
    let query = query.into_inner();
    let (response, ws, stream) = actix_ws::handle_with_protocols(&req, body, &[COMPACT_PROTOCOL])?;
    let by_header = response
        .headers()
        .get(actix_web::http::header::SEC_WEBSOCKET_PROTOCOL)
        .is_some_and(|p| p.as_bytes() == COMPACT_PROTOCOL.as_bytes());
    let compact = by_header || query.dialect.as_deref() == Some("compact");
    let Some(slot) = state.sockets.take(&caller.user_id) else {
        let limit = state.sockets.limit();
        actix_web::rt::spawn(async move {
            let reason = CloseReason {
                code: CloseCode::Policy,
                description: Some(format!(
                    "too many chat sockets open: at most {limit} per user; close one first"
                )),
            };
            // A peer that does not read must not keep us.
            let _ = tokio::time::timeout(Duration::from_secs(5), ws.close(Some(reason))).await;
        });
        return Ok(response);
    };
    let stream = stream
        .max_frame_size(MAX_FRAME_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME_BYTES);
    let conn = Conn::new(ws, state.into_inner(), caller, Trace::from_request(&req));
    let conversation_id = query.conversation_id.filter(|id| !id.is_empty());
    actix_web::rt::spawn(async move {
        // Held while the socket lives.
        let _slot = slot;
        let end = if compact {
            session::run(conn, stream, Compact::new(conversation_id)).await
        } else {
            session::run(conn, stream, Envelope::new(conversation_id, query.debug)).await
        };
        tracing::debug!(?end, "chat socket ended");
    });
    Ok(response)
}
