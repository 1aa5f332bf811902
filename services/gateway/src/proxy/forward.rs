//! Forwards a request along its route and streams the reply back.
//!
//! Paths: the path is decoded and checked once, before routing, for plain
//! requests and WebSockets alike; a dot segment, an encoded `/` or `\` or a
//! NUL is refused with 400 `bad_path` (see `path`), and the rest of the path
//! goes upstream as segments the gateway encoded itself.
//!
//! Identity: whatever identity a client sends (`_auth` in the body,
//! `X-User-*`, `X-Service-Token`, `Authorization`, `X-Agent-Id`,
//! `X-Conversation-Id`) is stripped; on routes
//! that inject auth the gateway adds its own from the verified access token,
//! with the service token. A JSON body that is rewritten loses its
//! `Content-Length`. The gateway's own cookies (`confab_access`,
//! `confab_refresh`) are taken out of the `Cookie` header, which is dropped
//! when nothing else is left in it (see `browser`).
//!
//! Bodies: on auth-injected routes a body is read whole (it is rewritten;
//! at most `[limits] body_bytes`); elsewhere it is streamed to the upstream
//! as it arrives, cut off with 413 past the same limit. Replies are streamed
//! as they arrive, so SSE events reach the client as the upstream sends them
//! (those that arrive together in one chunk, see `coalesce`).
//! A WebSocket upgrade on any route is tunnelled (`confab_kit::ws_tunnel`):
//! after the upstream's 101 the bytes pass through untouched both ways.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::body::SizedStream;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::trace_context::TRACEPARENT;
use confab_kit::ws_tunnel::{self, HandshakeError};
use confab_protocol::auth::{
    AGENT_ID_HEADER, AUTH_FIELD, AuthContext, CONVERSATION_ID_HEADER, REQUEST_ID_HEADER,
    SERVICE_TOKEN_HEADER, USER_ID_HEADER, USER_NAME_HEADER, USER_ROLE_HEADER,
};
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{CONTENT_LENGTH, HeaderMap as UpstreamHeaders, HeaderName, HeaderValue};
use serde_json::Value;

use super::UpstreamClient;
use super::coalesce::Coalesce;
use super::path::RequestPath;
use super::routing::Route;
use super::upstream::{self, RequestBody};
use crate::GatewayState;
use crate::auth::{authenticate, authenticate_upgrade};
use crate::browser;
use crate::console::{self, Console};

/// Headers that describe one hop and are never forwarded (RFC 9110 §7.6.1),
/// plus the ones the gateway sets itself, and the attribution headers a
/// service trusts next to the service token (`X-Agent-Id`,
/// `X-Conversation-Id`: llm-proxy-service files a call under them), which
/// only the services themselves may send.
const NOT_FORWARDED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "authorization",
    "x-forwarded-for",
    TRACEPARENT,
    SERVICE_TOKEN_HEADER,
    USER_ID_HEADER,
    USER_ROLE_HEADER,
    USER_NAME_HEADER,
    AGENT_ID_HEADER,
    CONVERSATION_ID_HEADER,
    REQUEST_ID_HEADER,
];

/// Reply headers not passed back (hop-by-hop; the length is re-framed).
const NOT_RETURNED: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "trailer",
    "upgrade",
    "content-length",
    "x-request-id",
];

/// Chunks of a streamed request body in flight to the upstream; the reader
/// waits when they are all taken, so a slow upstream slows the client.
const BODY_CHUNKS_IN_FLIGHT: usize = 4;

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
        return Err(ApiError::not_found("route"));
    };
    // The routing table matches here, not actix: one lookup per request
    // instead of a pattern per route. So actix has no pattern to count the
    // request under in /metrics; the route's prefix is.
    req.extensions_mut()
        .insert(confab_kit::server::RouteLabel(route.prefix.clone()));
    let identity = if route.inject_auth {
        let claims = match upgrade {
            true => {
                authenticate_upgrade(&req, query_token.as_deref(), &state.keys, &state.browser)
                    .await?
            }
            false => authenticate(&req, &state.keys, &state.browser).await?,
        };
        Some(AuthContext {
            user_id: claims.sub,
            username: Some(claims.name),
            role: claims.role,
        })
    } else {
        None
    };
    if route.rate_limited && req.method() == actix_web::http::Method::POST {
        let key = match &identity {
            Some(identity) => identity.user_id.clone(),
            None => crate::limits::rate_key(state.limits.client_ip(&req)).to_string(),
        };
        state.limits.check_chat_post(&key)?;
    }
    let mut headers = upstream_headers(&req, &state, identity.as_ref());

    if upgrade {
        // `target` was written segment by segment by `path`: the URL parse
        // of the handshake finds nothing in it to normalise.
        let url = format!("{}{target}", route.upstream.base_url);
        return tunnel(&req, &state, &http.websocket, &url, headers, payload).await;
    }
    let method = hyper::Method::from_bytes(req.method().as_str().as_bytes())
        .map_err(|_| ApiError::bad_request("bad_method", "unsupported method"))?;
    let uri = hyper::Uri::try_from(target.as_str())
        .map_err(|_| ApiError::bad_request("bad_path", "the path cannot be forwarded"))?;
    let limit = state.body_limit;
    let declared = declared_length(req.headers())?;
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large(limit));
    }
    // A body is there when its length is not zero, or when it is chunked.
    let has_body = declared.map_or_else(
        || req.headers().contains_key(header::TRANSFER_ENCODING),
        |n| n > 0,
    );
    let overflowed = Arc::new(AtomicBool::new(false));
    let body = match (&identity, has_body) {
        (_, false) => upstream::empty(),
        (Some(identity), true) => {
            let body = inject_auth(read_limited(payload, limit).await?, identity)?;
            if !body.is_empty() {
                headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
            }
            upstream::whole(body)
        }
        (None, true) => {
            if let Some(length) = declared {
                headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
            }
            stream_limited(payload, limit, overflowed.clone())
        }
    };
    let mut request = hyper::Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    send(&state, &http, route, request, &overflowed).await
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
    let base_url = route.upstream.base_url.clone();
    let path = request.uri().clone();
    let response = tokio::time::timeout(
        state.response_timeout,
        http.send(&route.upstream, request),
    )
        .await
        .map_err(|_| ApiError::gateway_timeout("the upstream did not answer in time"))?
        .map_err(|err| {
            if overflowed.load(Ordering::Relaxed) {
                return too_large(state.body_limit);
            }
            tracing::warn!(route = %route.prefix, url = %format_args!("{base_url}{path}"), error = %format!("{err:#}"), "upstream request failed");
            ApiError::bad_gateway("the upstream service is unavailable")
        })?;

    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut reply = HttpResponse::build(status);
    for (name, value) in response.headers() {
        if !NOT_RETURNED.contains(&name.as_str()) {
            reply.append_header((name.as_str(), value.as_bytes()));
        }
    }
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
/// connections; a refusal (say 401 or 404) is passed back as it came; an
/// upstream that is down answers 502, one that is slow 504.
async fn tunnel(
    req: &HttpRequest,
    state: &GatewayState,
    http: &reqwest::Client,
    url: &str,
    headers: UpstreamHeaders,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    match ws_tunnel::connect(http, url, req, headers, state.response_timeout).await {
        Ok(upstream) => Ok(upstream.into_response(payload)),
        Err(HandshakeError::Refused {
            status,
            headers,
            body,
        }) => {
            // Passed back as an HTTP reply is: its end-to-end headers
            // (`Retry-After` of a 429, `WWW-Authenticate` of a 401) go too.
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut reply = HttpResponse::build(status);
            for (name, value) in &headers {
                if !NOT_RETURNED.contains(&name.as_str()) {
                    reply.append_header((name.as_str(), value.as_bytes()));
                }
            }
            Ok(reply.body(body))
        }
        Err(HandshakeError::Unreachable(reason)) => {
            tracing::warn!(url = %url, reason = %reason, "upstream WebSocket unreachable");
            Err(ApiError::bad_gateway("the upstream service is unavailable"))
        }
        Err(HandshakeError::TimedOut) => Err(ApiError::gateway_timeout(
            "the upstream did not answer the WebSocket handshake in time",
        )),
    }
}

/// What the upstream is told: the client's end-to-end headers, the request
/// id, this hop's `traceparent`, the client's IP, and on auth-injected
/// routes the user's identity with the service token.
fn upstream_headers(
    req: &HttpRequest,
    state: &GatewayState,
    identity: Option<&AuthContext>,
) -> UpstreamHeaders {
    let mut headers = UpstreamHeaders::with_capacity(req.headers().len() + 8);
    for (name, value) in req.headers() {
        if NOT_FORWARDED.contains(&name.as_str()) {
            continue;
        }
        // The gateway's own cookies (the console's tokens) stay here.
        let stripped;
        let value = if name == header::COOKIE {
            match browser::strip_cookies(value.as_bytes()) {
                Some(rest) => {
                    stripped = rest;
                    stripped.as_slice()
                }
                None => continue,
            }
        } else {
            value.as_bytes()
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    // Values the gateway made itself are moved in, not copied.
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    if let Some(id) = confab_kit::server::request_id(req) {
        put(REQUEST_ID_HEADER, id);
    }
    if let Some(traceparent) = confab_kit::server::traceparent(req) {
        put(TRACEPARENT, traceparent);
    }
    put("x-forwarded-for", state.limits.client_ip(req).to_string());
    if let Some(identity) = identity {
        put(USER_ID_HEADER, identity.user_id.clone());
        put(USER_ROLE_HEADER, identity.role.as_str().to_owned());
        if let Some(name) = &identity.username {
            put(USER_NAME_HEADER, name.clone());
        }
        headers.insert(
            HeaderName::from_static(SERVICE_TOKEN_HEADER),
            state.service_token_header.clone(),
        );
    }
    headers
}

/// `Content-Length`, when the client declared one; a malformed one is 400.
fn declared_length(headers: &HeaderMap) -> Result<Option<usize>, ApiError> {
    headers
        .get(header::CONTENT_LENGTH)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| {
                    ApiError::bad_request("bad_content_length", "invalid Content-Length")
                })
        })
        .transpose()
}

fn too_large(limit: usize) -> ApiError {
    ApiError::payload_too_large("body_too_large", format!("body exceeds {limit} bytes"))
}

/// The whole body, refused with 413 as soon as it passes `limit`.
async fn read_limited(mut payload: web::Payload, limit: usize) -> Result<Bytes, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request("bad_body", e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The body as a stream for the upstream request. actix's payload lives on
/// this worker's thread, so a local task reads it into a bounded channel;
/// past `limit` the stream fails (the upstream request is abandoned) and
/// `overflowed` says why.
fn stream_limited(
    mut payload: web::Payload,
    limit: usize,
    overflowed: Arc<AtomicBool>,
) -> RequestBody {
    let (sender, receiver) =
        tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(BODY_CHUNKS_IN_FLIGHT);
    actix_web::rt::spawn(async move {
        let mut seen = 0usize;
        while let Some(chunk) = payload.next().await {
            let item = match chunk {
                Ok(chunk) => {
                    seen += chunk.len();
                    if seen > limit {
                        overflowed.store(true, Ordering::Relaxed);
                        Err(std::io::Error::other("body too large"))
                    } else {
                        Ok(chunk)
                    }
                }
                Err(err) => Err(std::io::Error::other(err.to_string())),
            };
            let failed = item.is_err();
            if sender.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    upstream::streamed(receiver)
}

/// Puts the caller's identity into a JSON body as `_auth`. Bodies on
/// auth-injected routes must be JSON objects: anything else could smuggle an
/// `_auth` past the gateway, so it is refused.
///
/// The body is checked in one pass ([`ObjectShape`]: is it one object, does
/// it name `_auth`), and the identity is spliced in before its closing
/// brace: the client's own members pass on byte for byte, so a number keeps
/// its digits (a parsed `serde_json::Value` would round a long decimal to an
/// `f64`) and nothing is built or re-serialised per request. A body that
/// already names `_auth`, however its key is escaped, is a forgery or a
/// confused client: it alone is rewritten whole, the real identity in place
/// of the sent one.
fn inject_auth(body: Bytes, identity: &AuthContext) -> Result<Bytes, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Bytes::new());
    }
    let shape: ObjectShape = serde_json::from_slice(&body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            ApiError::unprocessable("invalid_body", "the body must be a JSON object")
        }
        _ => ApiError::bad_request("malformed_json", format!("malformed JSON: {e}")),
    })?;
    if shape.names_auth {
        // The shape check skipped values unbuilt; building them can still
        // fail on what it let through (nesting past serde_json's recursion
        // limit, a number out of f64's range): the client's doing, not ours.
        let mut value: Value = serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(
                "unsupported_json",
                format!(
                    "a body that names {AUTH_FIELD} is rewritten whole, and this one cannot be: {e}"
                ),
            )
        })?;
        if let Some(object) = value.as_object_mut() {
            object.insert(
                AUTH_FIELD.to_owned(),
                serde_json::to_value(identity).map_err(ApiError::internal)?,
            );
        }
        return serde_json::to_vec(&value)
            .map(Bytes::from)
            .map_err(ApiError::internal);
    }
    let identity_json = serde_json::to_vec(identity).map_err(ApiError::internal)?;
    // The body parsed as one object followed by JSON whitespace only, so its
    // last other byte is the object's closing brace.
    let close = body
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .filter(|&at| body[at] == b'}')
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("a parsed JSON object has no closing brace"))
        })?;
    let mut out = Vec::with_capacity(close + AUTH_FIELD.len() + identity_json.len() + 5);
    out.extend_from_slice(&body[..close]);
    if shape.members > 0 {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(AUTH_FIELD.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(&identity_json);
    out.push(b'}');
    Ok(Bytes::from(out))
}

/// What [`inject_auth`] needs to know of a body: that it is one JSON object
/// (checked by deserialising it, values skipped unbuilt), how many members
/// it has, and whether one of its keys is `_auth` once unescaped.
struct ObjectShape {
    members: usize,
    names_auth: bool,
}

impl<'de> serde::Deserialize<'de> for ObjectShape {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl<'de> serde::de::Visitor<'de> for ShapeVisitor {
    type Value = ObjectShape;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ObjectShape, A::Error> {
        let mut shape = ObjectShape {
            members: 0,
            names_auth: false,
        };
        while let Some(IsAuthKey(is_auth)) = map.next_key()? {
            map.next_value::<serde::de::IgnoredAny>()?;
            shape.members += 1;
            shape.names_auth |= is_auth;
        }
        Ok(shape)
    }
}

/// A key of the body's object: is it `_auth` (compared after unescaping)?
struct IsAuthKey(bool);

impl<'de> serde::Deserialize<'de> for IsAuthKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl serde::de::Visitor<'_> for KeyVisitor {
            type Value = IsAuthKey;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object key")
            }

            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<IsAuthKey, E> {
                Ok(IsAuthKey(key == AUTH_FIELD))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_protocol::auth::Role;

    #[test]
    fn non_json_bodies_are_refused_on_injected_routes() {
        let identity = AuthContext {
            user_id: "u".into(),
            username: None,
            role: Role::User,
        };
        for (body, code) in [
            ("not json", "malformed_json"),
            ("{\"message\": \"unterminated", "malformed_json"),
            ("{} trailing", "malformed_json"),
            ("{}{}", "malformed_json"),
            ("[1]", "invalid_body"),
            ("\"text\"", "invalid_body"),
            ("42", "invalid_body"),
            ("null", "invalid_body"),
        ] {
            assert_eq!(
                inject_auth(Bytes::from(body), &identity)
                    .unwrap_err()
                    .code(),
                code,
                "{body}"
            );
        }
        assert!(
            inject_auth(Bytes::from("  "), &identity)
                .unwrap()
                .is_empty()
        );
    }

    fn ada() -> AuthContext {
        AuthContext {
            user_id: "usr-1".into(),
            username: Some("ada".into()),
            role: Role::User,
        }
    }

    #[test]
    fn the_clients_members_pass_on_byte_for_byte() {
        let sent = " {\"n\": 1.00000000000000000001, \"big\": 123456789012345678901234567890,\n \"z\": [1, {\"a\": \"\\u00e9\"}], \"a\": null} \r\n";
        let body = inject_auth(Bytes::from(sent), &ada()).unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        let kept = sent.trim_end().strip_suffix('}').unwrap();
        assert_eq!(
            text,
            format!(
                "{kept},\"_auth\":{{\"user_id\":\"usr-1\",\"username\":\"ada\",\"role\":\"user\"}}}}"
            )
        );
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["_auth"]["user_id"], "usr-1");
        assert_eq!(value["z"][1]["a"], "é");
    }

    /// Every top-level `_auth` of a JSON object, however its key is
    /// escaped; other members are skipped unbuilt.
    struct TopLevelAuths(Vec<Value>);

    impl<'de> serde::Deserialize<'de> for TopLevelAuths {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Visitor;
            impl<'de> serde::de::Visitor<'de> for Visitor {
                type Value = TopLevelAuths;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<TopLevelAuths, A::Error> {
                    let mut auths = Vec::new();
                    while let Some(key) = map.next_key::<String>()? {
                        if key == AUTH_FIELD {
                            auths.push(map.next_value()?);
                        } else {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                    Ok(TopLevelAuths(auths))
                }
            }
            deserializer.deserialize_map(Visitor)
        }
    }

    #[test]
    fn fuzz_any_body_gets_exactly_the_real_identity_or_a_4xx() {
        use confab_kit::fuzz;
        use proptest::prelude::*;
        let samples = [
            r#"{"message":"hi","agent_id":"math"}"#,
            r#"{"_auth":{"user_id":"usr-victim","role":"admin"},"message":"hi"}"#,
            r#"{"message":"hi","\u005fauth":{"user_id":"usr-victim","role":"admin"}}"#,
            r#"{"_auth":"x","_auth":{"role":"admin"},"n":1e400}"#,
            r#"{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],"b":1.00000000000000000001}"#,
            r#"{}"#,
        ]
        .map(str::to_owned)
        .to_vec();
        let identity = serde_json::to_value(ada()).unwrap();
        fuzz::fuzz(fuzz::client_text(samples), |body| {
            match inject_auth(Bytes::from(body.clone()), &ada()) {
                Err(err) => prop_assert!(err.status().is_client_error(), "{body:?}: {err:?}"),
                Ok(out) if out.is_empty() => prop_assert!(body.trim().is_empty()),
                Ok(out) => {
                    let auths: TopLevelAuths = serde_json::from_slice(&out)
                        .map_err(|e| TestCaseError::fail(format!("{body:?} → not JSON: {e}")))?;
                    prop_assert_eq!(&auths.0, &vec![identity.clone()], "{:?}", body);
                }
            }
            Ok(())
        });
    }

    #[test]
    fn an_empty_object_gets_only_the_identity() {
        let body = inject_auth(Bytes::from("{ }"), &ada()).unwrap();
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"_auth": {"user_id": "usr-1", "username": "ada", "role": "user"}})
        );
    }

    #[test]
    fn a_forged_auth_is_replaced_however_its_key_is_written() {
        for forged in [
            r#"{"_auth":{"user_id":"usr-victim","role":"admin"},"message":"hi"}"#,
            r#"{"message":"hi","\u005fauth":{"user_id":"usr-victim","role":"admin"}}"#,
            r#"{"message":"hi","_auth":"x","_auth":{"user_id":"usr-victim","role":"admin"}}"#,
        ] {
            let body = inject_auth(Bytes::from(forged), &ada()).unwrap();
            let value: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(value["_auth"]["user_id"], "usr-1", "{forged}");
            assert_eq!(value["_auth"]["role"], "user", "{forged}");
            assert_eq!(value["message"], "hi", "{forged}");
            let text = std::str::from_utf8(&body).unwrap();
            assert!(!text.contains("usr-victim"), "{text}");
            assert_eq!(text.matches("_auth").count(), 1, "{text}");
        }
    }

    #[test]
    fn deep_nesting_is_skipped_without_recursion() {
        // serde_json skips values iteratively: a body nested far deeper
        // than any parser's recursion limit cannot overflow the gateway's
        // stack (the upstream's own parser refuses it with 400).
        let depth = 200_000;
        let sent = format!(r#"{{"a":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
        let body = inject_auth(Bytes::from(sent.clone()), &ada()).unwrap();
        assert!(body.starts_with(sent.trim_end_matches('}').as_bytes()));
        assert!(body.ends_with(br#""role":"user"}}"#));
    }

    #[test]
    fn a_forged_auth_the_gateway_cannot_rebuild_is_a_client_error() {
        let deep = format!(
            r#"{{"_auth":{{}},"a":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        for body in [deep.as_str(), r#"{"_auth":1,"n":1e400}"#] {
            let err = inject_auth(Bytes::from(body.to_owned()), &ada()).unwrap_err();
            assert_eq!(err.status().as_u16(), 400, "{body}");
            assert_eq!(err.code(), "unsupported_json", "{body}");
        }
    }

    #[test]
    fn an_auth_below_the_top_level_is_left_alone() {
        let body = inject_auth(
            Bytes::from(r#"{"data":{"_auth":"not an identity"}}"#),
            &ada(),
        )
        .unwrap();
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["data"]["_auth"], "not an identity");
        assert_eq!(value["_auth"]["user_id"], "usr-1");
    }
}
