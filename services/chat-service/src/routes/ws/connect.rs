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
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::error::ErrorBody;
use serde::Deserialize;
use utoipa::IntoParams;

use super::MAX_FRAME_BYTES;
use super::compact::Compact;
use super::envelope::Envelope;
use super::session::{self, Conn};
use crate::AppState;
use crate::a2a::client::Trace;

/// A request the WebSocket handshake refuses (a plain GET, say), with the
/// status the handshake gives it (400, or 426 for another WebSocket
/// version): kit's mapping of actix errors reads `status_code()`, which
/// actix's handshake error leaves at 500.
fn not_an_upgrade(err: actix_web::Error) -> actix_web::Error {
    let status = err.error_response().status();
    if !status.is_client_error() {
        return err;
    }
    ApiError::new(status, "bad_request", err.to_string()).into()
}

/// The subprotocol of the compact dialect.
pub const COMPACT_PROTOCOL: &str = "confab.compact.v1";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChatQuery {
    /// The conversation the socket starts attached to.
    conversation_id: Option<String>,
    /// `compact` for the compact dialect (as the subprotocol asks).
    dialect: Option<String>,
    /// The caller's token, for a client that cannot send headers (a
    /// browser's `WebSocket`).
    token: Option<String>,
    /// The envelope dialect also sends its debug frames.
    #[serde(default)]
    debug: bool,
}

/// A chat session over a WebSocket (DESIGN §9), in one of two dialects.
///
/// **compact** (seed 001's frames; when the client offers the
/// `confab.compact.v1` subprotocol, which the handshake echoes, or asks for
/// `?dialect=compact`): flat frames; the server greets with
/// `{"type":"welcome","text"}`, the client sends
/// `{"type":"message","text"}`, the server answers `{"type":"token","text"}`
/// per chunk, then `{"type":"done","result":{…}}` or
/// `{"type":"error","error","code"}`.
///
/// **envelope** (seed 004's protocol; otherwise): server frames
/// `{"type","data","session_id"?,"timestamp","error"?}`, client frames
/// `{"type","data"?,"session_id"?}`; `init_session` attaches to a
/// conversation (and answers its `chat_history`), then the turns' events
/// come as `assistant_response`, `reasoning`, `tree_update` and, when asked
/// for (`?debug=true`), `debug` frames.
///
/// Frames are at most 64 KiB (larger: closed with 1009); a silent peer is
/// dropped after two heartbeats. A user over `limits.sockets_per_user`
/// open sockets gets the upgrade, then a close with 1008 naming the limit.
#[utoipa::path(
    get,
    path = "/ws/chat",
    tag = "chat",
    operation_id = "ws_chat",
    params(
        ChatQuery,
        ("Connection" = String, Header, pattern = r"^[Uu][Pp][Gg][Rr][Aa][Dd][Ee]$", description = "`Upgrade` (any case); a list with an `Upgrade` token and no `close` is taken too (RFC 6455 §4.1)."),
        ("Upgrade" = String, Header, pattern = r"^[Ww][Ee][Bb][Ss][Oo][Cc][Kk][Ee][Tt]$", description = "`websocket` (any case); a value that contains it is taken too."),
        ("Sec-WebSocket-Version" = String, Header, pattern = r"^13$", description = "`13`, the only version served (another one is 426)."),
        ("Sec-WebSocket-Key" = String, Header, pattern = r"^[A-Za-z0-9+/]{21}[AQgw]==$", description = "16 random bytes in base64 (24 characters, canonical: the last character before `==` has its low bits clear)."),
        ("Sec-WebSocket-Protocol" = Option<String>, Header, nullable = false, description = "`confab.compact.v1` for the compact dialect.")
    ),
    responses(
        (status = 101, description = "Switching Protocols: the WebSocket is open, in the dialect asked for."),
        (status = 400, description = "`bad_request`: not a WebSocket upgrade (a plain GET: no `Upgrade: websocket`, no `Connection: Upgrade`, no `Sec-WebSocket-Version`, or no valid `Sec-WebSocket-Key`); `bad_query`: the query cannot be read (`debug` not a boolean).", body = ErrorBody),
        (status = 426, description = "`bad_request`: a `Sec-WebSocket-Version` other than 13.", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn chat(
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<ChatQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let caller = Caller::from_request_or_token(&req, query.token.as_deref()).await?;
    let query = query.into_inner();
    let (response, ws, stream) =
        actix_ws::handle_with_protocols(&req, body, &[COMPACT_PROTOCOL]).map_err(not_an_upgrade)?;
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
