//! `GET /ws/trace/{agent_id}`: one agent's trace events, live.
//!
//! Auth: a user token in `?token=` or `Authorization: Bearer`, or identity
//! from the gateway with the service token. A user sees their own events;
//! an admin may add `?all_users=true`. `?since=<seq>` first replays what came
//! after `seq`, then a `live` frame, then live events. The server pings every
//! `heartbeat_secs` and drops a peer silent for `client_timeout_secs`.
//!
//! A user may have `subscribers_per_user` subscriptions open at once (an
//! admin's all-users ones included); the upgrade over it is refused with
//! 429 and the JSON error body. The place is given back when the socket's
//! task ends, however it ends.
//!
//! The subscription is made before the upgrade, so a bus that cannot be
//! reached answers 503 with the JSON error body (`subscription` has the
//! rest).

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Session};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::error::ErrorBody;
use confab_protocol::trace::TraceFrame;
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::error::ProxyError;
use crate::trace::subscription::{Filter, Frame, Stopped, Subscription};

/// `Retry-After` of a subscription refused for the per-user cap: a place
/// comes back when one of the user's sockets closes, which is not known;
/// 10 s keeps a reconnecting client from hammering.
const SUBSCRIBER_RETRY_SECS: u64 = 10;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TraceQuery {
    /// A user's access token, for a client that cannot set
    /// `Authorization` (a browser's WebSocket).
    token: Option<String>,
    /// Replay the stored events after this `seq` first.
    #[param(minimum = 0)]
    since: Option<i64>,
    /// Every user's events of the agent (admins only).
    #[serde(default)]
    #[param(default = false)]
    all_users: bool,
}

/// The frames of the socket, described once for the document.
const FRAMES: &str = "Switched to a WebSocket. The server sends JSON text frames, each a \
`TraceFrame` (#/components/schemas/TraceFrame): with `since`, first `{\"type\":\"trace\",\"event\":…}` \
for each stored event after it, then one `{\"type\":\"live\",\"last_seq\"}`, then \
`{\"type\":\"trace\",\"event\":…}` live (`TraceEvent`: kinds `llm.request`, `llm.delta`, \
`llm.response`, `llm.tool_call`, `llm.error`), in `seq` order with no gap and no duplicate. The \
server pings every `heartbeat_secs` and closes a peer silent for `client_timeout_secs` (1001); \
a subscriber too slow for the stream, or a stream interrupted, is closed with 1013 and a reason \
naming the `since` to reconnect with; a replay that fails closes with 1011.";

/// One agent's trace events, live, over a WebSocket: the caller's own
/// (every user's for an admin asking `all_users=true`), after a replay of
/// the stored ones from `since`.
///
/// Credentials: a user's access token (`Authorization: Bearer` or
/// `?token=`), or the service token with `X-User-Id` (the gateway).
#[utoipa::path(
    get,
    path = "/ws/trace/{agent_id}",
    tag = "traces",
    params(
        ("agent_id" = String, Path, description = "The agent whose events to follow."),
        TraceQuery,
        (
            "Connection" = String, Header,
            description = "The handshake's (RFC 6455 §4.2.1): a list of tokens that includes `Upgrade` (any case) and not `close`; without it, 400 `bad_request`.",
            pattern = "^[Uu][Pp][Gg][Rr][Aa][Dd][Ee]$"
        ),
        (
            "Upgrade" = String, Header,
            description = "The handshake's: `websocket` (any case); without it, 400 `bad_request` (a plain GET).",
            pattern = "^[Ww][Ee][Bb][Ss][Oo][Cc][Kk][Ee][Tt]$"
        ),
        (
            "Sec-WebSocket-Version" = String, Header,
            description = "The handshake's: `13`, the one version served; another or none, 400 `bad_request`.",
            pattern = "^13$"
        ),
        (
            "Sec-WebSocket-Key" = String, Header,
            description = "The handshake's: 16 random bytes in base64 (24 characters); another or none, 400 `bad_request`.",
            pattern = "^[A-Za-z0-9+/]{21}[AQgw]==$"
        )
    ),
    security(("bearer" = []), ("service_token" = [])),
    responses(
        (status = 101, description = FRAMES),
        (status = 400, description = "`bad_request`: not a WebSocket handshake (a plain GET without `Upgrade: websocket`, or a handshake header missing or not as documented); `bad_query`: the query cannot be read.", body = ErrorBody),
        (status = 403, description = "`forbidden`: `all_users=true` from a user who is not an admin.", body = ErrorBody),
        (status = 422, description = "`invalid_since`: `since` is negative.", body = ErrorBody),
        (
            status = 429,
            description = "`rate_limited`: the user has `subscribers_per_user` subscriptions open already.",
            headers(("retry-after" = String, description = "Seconds to wait before trying again.")),
            body = ErrorBody
        ),
        (
            status = 503,
            description = "`unavailable`: the bus the events come through cannot be reached.",
            headers(("retry-after" = String, description = "Seconds to wait before trying again.")),
            body = ErrorBody
        )
    )
)]
pub async fn subscribe(
    req: HttpRequest,
    body: web::Payload,
    path: web::Path<String>,
    query: web::Query<TraceQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let caller = Caller::from_request_or_token(&req, query.token.as_deref()).await?;
    if query.all_users && !caller.is_admin() {
        return Err(ProxyError::AdminsOnly("follow every user's events").into());
    }
    if query.since.is_some_and(|s| s < 0) {
        return Err(ProxyError::InvalidSince.into());
    }
    let Some(slot) = state.subscribers.take(&caller.user_id) else {
        let limit = state.subscribers.limit();
        return Err(ProxyError::TooManySubscriptions {
            limit,
            retry_after: SUBSCRIBER_RETRY_SECS,
        }
        .into());
    };
    let filter = Filter {
        agent_id: path.into_inner(),
        user_id: (!query.all_users).then_some(caller.user_id),
    };
    let subscription = state
        .hub
        .subscribe(filter, query.since)
        .await
        .map_err(ProxyError::from)?;
    let (response, session, stream) = actix_ws::handle(&req, body).map_err(not_a_handshake)?;
    let state = state.into_inner();
    actix_web::rt::spawn(async move {
        // Both held while the socket lives; the subscription unsubscribes
        // when dropped.
        let _slot = slot;
        let end = serve(
            session,
            stream.aggregate_continuations(),
            subscription,
            &state,
        )
        .await;
        tracing::debug!(?end, "trace subscriber left");
    });
    Ok(response)
}

/// A request that is not a WebSocket handshake (a plain GET, a header
/// missing or wrong): 400 with the JSON error body. actix's
/// `HandshakeError` keeps its status in its response, not in
/// `status_code`, which kit's mapping reads: left as it is, the answer
/// would be a 500. Its status for a version other than 13 is 426, which
/// RFC 6455 §4.4 gives as an example ("an appropriate HTTP error code
/// (such as 426 Upgrade Required)"); 400 is one too, and is the answer to
/// every other header of the handshake, so the document has one.
fn not_a_handshake(err: actix_web::Error) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", err.to_string())
}

#[derive(Debug)]
enum End {
    ClientClosed,
    ClientGone,
    Lagged,
    BusFailed,
    Silent,
    ReplayFailed,
}

async fn serve(
    mut session: Session,
    mut from_client: actix_ws::AggregatedMessageStream,
    mut subscription: Subscription,
    state: &crate::AppState,
) -> End {
    loop {
        match subscription.replayed().await {
            Ok(Some(frame)) => {
                if send(&mut session, frame).await.is_err() {
                    return End::ClientGone;
                }
            }
            Ok(None) => break,
            Err(error) => {
                tracing::warn!(%error, "replaying trace events failed");
                close(session, CloseCode::Error, "replay failed").await;
                return End::ReplayFailed;
            }
        }
    }
    let live = TraceFrame::Live {
        last_seq: subscription.last_seq(),
    };
    if session
        .text(serde_json::to_string(&live).unwrap_or_default())
        .await
        .is_err()
    {
        return End::ClientGone;
    }
    subscription.go_live();

    let mut heartbeat =
        tokio::time::interval(Duration::from_secs(state.trace.heartbeat_secs.max(1)));
    let timeout = Duration::from_secs(state.trace.client_timeout_secs.max(1));
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            frame = subscription.next_live() => match frame {
                Some(frame) => {
                    if send(&mut session, frame).await.is_err() {
                        return End::ClientGone;
                    }
                }
                None => {
                    let since = subscription.last_seq();
                    let (reason, end) = match subscription.stopped() {
                        Some(Stopped::Lagged) => ("too slow", End::Lagged),
                        _ => ("the trace stream was interrupted", End::BusFailed),
                    };
                    let reason = format!("{reason}; reconnect with since={since}");
                    close(session, CloseCode::Again, &reason).await;
                    return end;
                }
            },
            message = from_client.next() => match message {
                Some(Ok(AggregatedMessage::Ping(bytes))) => {
                    last_heard = Instant::now();
                    if session.pong(&bytes).await.is_err() {
                        return End::ClientGone;
                    }
                }
                Some(Ok(AggregatedMessage::Close(_))) => {
                    let _ = session.close(None).await;
                    return End::ClientClosed;
                }
                Some(Ok(_)) => last_heard = Instant::now(),
                Some(Err(_)) | None => return End::ClientGone,
            },
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > timeout {
                    close(session, CloseCode::Away, "no answer to pings").await;
                    return End::Silent;
                }
                if session.ping(b"").await.is_err() {
                    return End::ClientGone;
                }
            }
        }
    }
}

async fn send(session: &mut Session, frame: Frame) -> Result<(), actix_ws::Closed> {
    session.text(frame.text).await
}

/// Closing waits for the socket; a peer that does not read must not keep us.
async fn close(session: Session, code: CloseCode, reason: &str) {
    let reason = CloseReason {
        code,
        description: Some(reason.to_owned()),
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), session.close(Some(reason))).await;
}
