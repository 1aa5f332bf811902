//! Forwards a request along its route and streams the reply back.
//!
//! Paths: the path is decoded and checked once, before routing, for plain
//! requests and WebSockets alike; a dot segment, an encoded `/` or `\` or a
//! NUL is refused with 400 `bad_path` (see `path`), and the rest of the path
//! goes upstream as segments the gateway encoded itself.
//!
//! Identity: a client's own is stripped (`headers`, and `_auth` in a body,
//! see `inject_auth`); on routes that inject auth the gateway adds the one
//! of the verified access token or API key (in the headers alone where the
//! route's `body_auth` is off: there the body goes as sent). Bodies are read or streamed within
//! `[limits] body_bytes` (see `body`). Replies are streamed as they arrive,
//! so SSE events reach the client as the upstream sends them (those that
//! arrive together in one chunk, see `confab_kit::coalesce`).
//! A WebSocket upgrade on any route is tunnelled (`confab_kit::ws_tunnel`):
//! after the upstream's 101 the bytes pass through untouched both ways.

use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::body::SizedStream;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::coalesce::Coalesce;
use confab_kit::trace_context::TRACEPARENT;
use confab_kit::ws_tunnel::{self, HandshakeError};
use confab_protocol::auth::Role;
use futures_util::TryStreamExt;
use reqwest::header::HeaderMap as UpstreamHeaders;
use serde_json::json;
use tracing::Instrument;

use super::UpstreamClient;
use super::body::request_body;
use super::headers::{client_reply, upstream_headers};
use super::instances::Refusals;
use super::path::RequestPath;
use super::routing::Route;
use super::upstream::RequestBody;
use crate::GatewayState;
use crate::audit::{self, Action, Actor};
use crate::auth::{Caller, authenticate_caller};
use crate::console::{self, Console};
use crate::error::GatewayError;
use crate::limits::Client;

pub async fn forward(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    http: web::Data<UpstreamClient>,
    console: web::Data<Console>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let upgrade = ws_tunnel::is_upgrade(&req);
    // A WebSocket may carry its token in the query; it never goes upstream.
    let (query_token, query) = if upgrade {
        ws_tunnel::split_token(req.query_string())
    } else {
        (None, req.query_string().to_owned())
    };
    // Decoded and checked once, for plain requests and WebSockets alike:
    // what is routed is what is forwarded (see `path`).
    let path = RequestPath::parse(req.path())?;
    let Some((route, target)) = state.routes.resolve(&path, &query) else {
        // A deep link into the web console, or nothing at all.
        if !upgrade && console::is_page(&req) {
            return Ok(console.page(&req));
        }
        return Err(GatewayError::NoRoute.into());
    };
    // The routing table matches here, not actix: one lookup per request
    // instead of a pattern per route. So actix has no pattern to count the
    // request under in /metrics; the route's prefix is.
    req.extensions_mut()
        .insert(confab_kit::server::RouteLabel(route.prefix.clone()));
    let identity = if route.inject_auth {
        let caller = authenticate_caller(&req, query_token.as_deref(), upgrade, &state).await?;
        if let Caller::Key(grant) = &caller {
            grant.admit(route.scope, &route.prefix, req.method(), upgrade)?;
        }
        let identity = caller.identity();
        if identity.role == Role::Admin && asks_for_all_users(&query) {
            let actor = Actor::user(
                &identity.user_id,
                identity.username.as_deref().unwrap_or(""),
            );
            // The path, not the query: a query may carry what is not the
            // trail's to keep (a misplaced token).
            let detail = json!({"method": req.method().as_str(), "path": req.path()});
            audit::record(&state, &req, actor, Action::AllUsersRead, None, detail).await?;
        }
        Some(identity)
    } else {
        None
    };
    if route.rate_limited && req.method() == actix_web::http::Method::POST {
        let client = match &identity {
            Some(identity) => Client::User(&identity.user_id),
            None => Client::Ip(state.limits.client_ip(&req)),
        };
        state.limits.check_chat_post(client).await?;
    }
    let mut headers = upstream_headers(&req, &state, identity.as_ref());
    // The call to the upstream, a client span under the request's: the
    // upstream's request span is its child.
    let span = tracing::info_span!(
        "upstream",
        otel.name = %format_args!("{} {}", req.method(), route.upstream.name()),
        otel.kind = "client",
        http.request.method = %req.method(),
        confab.route = &*route.prefix,
        http.response.status_code = tracing::field::Empty,
    );
    if let Some(traceparent) = confab_kit::telemetry::traceparent_of(&span)
        && let Ok(value) = reqwest::header::HeaderValue::try_from(traceparent)
    {
        headers.insert(TRACEPARENT, value);
    }

    if upgrade {
        return tunnel(
            &req,
            &state,
            &http.websocket,
            route,
            &target,
            headers,
            payload,
        )
        .instrument(span)
        .await;
    }
    let method = hyper::Method::from_bytes(req.method().as_str().as_bytes())
        .map_err(|_| GatewayError::BadMethod)?;
    let uri = hyper::Uri::try_from(target.as_str()).map_err(|_| GatewayError::UnforwardablePath)?;
    let (body, overflowed) = request_body(
        req.headers(),
        payload,
        state.body_limit,
        identity.as_ref().filter(|_| route.body_auth),
        &mut headers,
    )
    .await?;
    let mut request = hyper::Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    send(&state, &http, route, request, &overflowed)
        .instrument(span)
        .await
}

/// Whether a query asks for every user's data (`all_users=true`, which
/// the services grant admins only): such a read is in the audit trail.
fn asks_for_all_users(query: &str) -> bool {
    query.contains("all_users")
        && serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .is_ok_and(|pairs| pairs.iter().any(|(k, v)| k == "all_users" && v == "true"))
}

/// Sends the request and streams the upstream's reply back.
async fn send(
    state: &GatewayState,
    http: &UpstreamClient,
    route: &Route,
    request: hyper::Request<RequestBody>,
    overflowed: &AtomicBool,
) -> Result<HttpResponse, ApiError> {
    // For the logs, formatted only if one is written: where the request went.
    let path = request.uri().clone();
    let (response, instance) = tokio::time::timeout(
        state.response_timeout,
        http.send(&route.upstream, request),
    )
        .await
        .map_err(|_| GatewayError::UpstreamTimeout)?
        .map_err(|err| {
            if overflowed.load(Ordering::Relaxed) {
                return ApiError::from(GatewayError::BodyTooLarge(state.body_limit));
            }
            tracing::warn!(route = %route.prefix, upstream = %route.upstream.name(), path = %path, error = %format!("{err:#}"), "upstream request failed");
            GatewayError::UpstreamUnavailable.into()
        })?;
    let base_url = instance.base_url.clone();
    // As i64: an unsigned field reaches the span as text.
    tracing::Span::current().record(
        "http.response.status_code",
        i64::from(response.status().as_u16()),
    );

    let mut reply = client_reply(response.status().as_u16(), response.headers());
    let stream = response.into_body();
    let length = stream.exact_len();
    let stream = stream.map_err(move |err| {
        tracing::warn!(url = %format_args!("{base_url}{path}"), error = %err, "upstream stream broke");
        actix_web::error::ErrorBadGateway("upstream stream broke")
    });
    // A reply of known length keeps it: still streamed, but framed by
    // Content-Length rather than chunked, as the upstream sent it. A chunked
    // one (SSE) is passed on as it arrives, what arrived together as one
    // chunk.
    Ok(match length {
        Some(length) => reply.body(SizedStream::new(length, stream)),
        None => reply.streaming(Coalesce::new(stream)),
    })
}

/// A WebSocket: the upstream's handshake answer decides. 101 joins the two
/// connections; a refusal (say 401 or 404) is passed back as it came. The
/// upgrade goes to the route's instances in turn, as requests do: one that
/// refuses the connection is skipped for the next. Every instance refusing,
/// or one failing the handshake, answers 502; one that is slow 504.
async fn tunnel(
    req: &HttpRequest,
    state: &GatewayState,
    http: &reqwest::Client,
    route: &Route,
    target: &str,
    headers: UpstreamHeaders,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let deadline = tokio::time::Instant::now() + state.response_timeout;
    let mut refusals = Refusals::default();
    for instance in route.upstream.attempts() {
        // `target` was written segment by segment by `path`: the URL parse
        // of the handshake finds nothing in it to normalise.
        let url = format!("{}{target}", instance.base_url);
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ws_tunnel::connect(http, &url, req, headers.clone(), left).await {
            Ok(upstream) => {
                route.upstream.connected(instance);
                return Ok(upstream.into_response(payload));
            }
            Err(HandshakeError::Refused {
                status,
                headers,
                body,
            }) => return Ok(client_reply(status, &headers).body(body)),
            Err(HandshakeError::NotConnected(reason)) => {
                route.upstream.refused(instance, &reason, &mut refusals);
            }
            Err(HandshakeError::Unreachable(reason)) => {
                tracing::warn!(url = %url, reason = %reason, "upstream WebSocket unreachable");
                return Err(GatewayError::UpstreamUnavailable.into());
            }
            Err(HandshakeError::TimedOut) => return Err(GatewayError::HandshakeTimeout.into()),
        }
    }
    tracing::warn!(route = %route.prefix, upstream = %route.upstream.name(), refusals = %refusals, "no instance of the upstream accepted the WebSocket's connection");
    Err(GatewayError::UpstreamUnavailable.into())
}
