//! Which headers cross the gateway, each way.
//!
//! Whatever identity a client sends in a header (`X-User-*`,
//! `X-Service-Token`, `Authorization`, `X-Agent-Id`, `X-Conversation-Id`) is
//! stripped; on routes that inject auth the gateway adds its own from the
//! verified access token, with the service token. The gateway's own cookies
//! (`confab_access`, `confab_refresh`) are taken out of the `Cookie` header,
//! which is dropped when nothing else is left in it (see `browser`).

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use confab_kit::trace_context::TRACEPARENT;
use confab_protocol::auth::{
    AGENT_ID_HEADER, API_KEY_ID_HEADER, AuthContext, CONVERSATION_ID_HEADER, REQUEST_ID_HEADER,
    SERVICE_TOKEN_HEADER, USER_ID_HEADER, USER_NAME_HEADER, USER_ROLE_HEADER,
};
use reqwest::header::{HeaderMap as UpstreamHeaders, HeaderName, HeaderValue};

use crate::GatewayState;
use crate::browser;

/// Headers that describe one hop and are never forwarded (RFC 9110 §7.6.1),
/// plus the ones the gateway sets itself, and the attribution headers a
/// service trusts next to the service token (`X-Agent-Id`,
/// `X-Conversation-Id`, `X-Api-Key-Id`: llm-proxy-service files a call
/// under them), which
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
    API_KEY_ID_HEADER,
    REQUEST_ID_HEADER,
];

/// Whether a request header a client sends reaches the upstream: not when
/// the gateway strips it (identity, attribution, hop-by-hop). The
/// WebSocket handshake's `Connection` and `Upgrade` are the tunnel's own.
pub fn reaches_upstream(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "connection" || name == "upgrade" || !NOT_FORWARDED.contains(&name.as_str())
}

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

/// What the upstream is told: the client's end-to-end headers, the request
/// id, this hop's `traceparent`, the client's IP, and on auth-injected
/// routes the user's identity with the service token.
pub fn upstream_headers(
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
        if let Some(key) = &identity.api_key_id {
            put(API_KEY_ID_HEADER, key.clone());
        }
        headers.insert(
            HeaderName::from_static(SERVICE_TOKEN_HEADER),
            state.service_token_header.clone(),
        );
    }
    headers
}

/// The client's reply to an upstream's answer (a reply, or a refused
/// WebSocket handshake): its status and its end-to-end headers, such as the
/// `Retry-After` of a 429 or the `WWW-Authenticate` of a 401.
pub fn client_reply(status: u16, headers: &UpstreamHeaders) -> HttpResponseBuilder {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut reply = HttpResponse::build(status);
    for (name, value) in headers {
        if !NOT_RETURNED.contains(&name.as_str()) {
            reply.append_header((name.as_str(), value.as_bytes()));
        }
    }
    reply
}
