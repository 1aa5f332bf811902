//! Forwards a request along its route and streams the reply back.
//!
//! Identity: whatever identity a client sends (`_auth` in the body,
//! `X-User-*`, `X-Service-Token`) is stripped; on routes that inject auth the
//! gateway adds its own from the verified access token, with the service
//! token. A JSON body that is rewritten loses its `Content-Length`.
//!
//! Replies are streamed chunk by chunk as they arrive from the upstream, so
//! SSE events reach the client one by one.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_protocol::auth::{
    AUTH_FIELD, AuthContext, REQUEST_ID_HEADER, SERVICE_TOKEN_HEADER, USER_ID_HEADER,
    USER_NAME_HEADER, USER_ROLE_HEADER,
};
use futures_util::TryStreamExt;
use serde_json::Value;

use crate::GatewayState;
use crate::auth::authenticate;

/// Headers that describe one hop and are never forwarded (RFC 9110 §7.6.1),
/// plus the ones the gateway sets itself.
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
    SERVICE_TOKEN_HEADER,
    USER_ID_HEADER,
    USER_ROLE_HEADER,
    USER_NAME_HEADER,
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

pub async fn forward(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let (route, url) = state
        .routes
        .resolve(req.path(), req.query_string())
        .ok_or_else(|| ApiError::not_found("route"))?;
    let identity = if route.inject_auth {
        let claims = authenticate(&req, &state.keys)?;
        Some(AuthContext {
            user_id: claims.sub,
            username: Some(claims.name),
            role: claims.role,
        })
    } else {
        None
    };

    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .map_err(|_| ApiError::bad_request("bad_method", "unsupported method"))?;
    let mut upstream = state.http.request(method, &url);
    for (name, value) in forwardable(req.headers()) {
        upstream = upstream.header(name.as_str(), value.as_bytes());
    }
    if let Some(id) = confab_kit::server::request_id(&req) {
        upstream = upstream.header(REQUEST_ID_HEADER, id);
    }
    if let Some(peer) = req.peer_addr() {
        upstream = upstream.header("x-forwarded-for", peer.ip().to_string());
    }
    let body = match &identity {
        Some(identity) => {
            upstream = upstream
                .header(SERVICE_TOKEN_HEADER, state.service_token.as_str())
                .header(USER_ID_HEADER, identity.user_id.as_str())
                .header(USER_ROLE_HEADER, identity.role.as_str());
            if let Some(name) = &identity.username {
                upstream = upstream.header(USER_NAME_HEADER, name.as_str());
            }
            inject_auth(body, identity)?
        }
        None => body,
    };
    if !body.is_empty() {
        upstream = upstream.body(body);
    }

    let response = tokio::time::timeout(state.response_timeout, upstream.send())
        .await
        .map_err(|_| ApiError::gateway_timeout("the upstream did not answer in time"))?
        .map_err(|err| {
            tracing::warn!(url = %url, error = %err, "upstream request failed");
            if err.is_timeout() {
                ApiError::gateway_timeout("the upstream did not answer in time")
            } else {
                ApiError::bad_gateway("the upstream service is unavailable")
            }
        })?;

    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut reply = HttpResponse::build(status);
    for (name, value) in response.headers() {
        if !NOT_RETURNED.contains(&name.as_str()) {
            reply.append_header((name.as_str(), value.as_bytes()));
        }
    }
    let url_for_log = url.clone();
    let stream = response.bytes_stream().map_err(move |err| {
        tracing::warn!(url = %url_for_log, error = %err, "upstream stream broke");
        actix_web::error::ErrorBadGateway("upstream stream broke")
    });
    Ok(reply.streaming(stream))
}

fn forwardable(headers: &HeaderMap) -> impl Iterator<Item = (&HeaderName, &header::HeaderValue)> {
    headers
        .iter()
        .filter(|(name, _)| !NOT_FORWARDED.contains(&name.as_str()))
}

/// Puts the caller's identity into a JSON body as `_auth`, replacing any the
/// client sent. Bodies on auth-injected routes must be JSON objects: anything
/// else could smuggle an `_auth` past the gateway, so it is refused.
fn inject_auth(body: Bytes, identity: &AuthContext) -> Result<Bytes, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Bytes::new());
    }
    let mut value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("malformed_json", format!("malformed JSON: {e}")))?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| ApiError::unprocessable("invalid_body", "the body must be a JSON object"))?;
    object.insert(
        AUTH_FIELD.to_owned(),
        serde_json::to_value(identity).map_err(ApiError::internal)?,
    );
    serde_json::to_vec(&value)
        .map(Bytes::from)
        .map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_protocol::auth::Role;

    #[test]
    fn a_forged_auth_is_replaced_by_the_real_one() {
        let identity = AuthContext {
            user_id: "usr-real".into(),
            username: Some("ada".into()),
            role: Role::User,
        };
        let forged =
            Bytes::from(r#"{"message":"hi","_auth":{"user_id":"usr-victim","role":"admin"}}"#);
        let body = inject_auth(forged, &identity).unwrap();
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["_auth"]["user_id"], "usr-real");
        assert_eq!(value["_auth"]["role"], "user");
        assert_eq!(value["message"], "hi");
    }

    #[test]
    fn non_json_bodies_are_refused_on_injected_routes() {
        let identity = AuthContext {
            user_id: "u".into(),
            username: None,
            role: Role::User,
        };
        assert_eq!(
            inject_auth(Bytes::from("not json"), &identity)
                .unwrap_err()
                .code(),
            "malformed_json"
        );
        assert_eq!(
            inject_auth(Bytes::from("[1]"), &identity)
                .unwrap_err()
                .code(),
            "invalid_body"
        );
        assert!(
            inject_auth(Bytes::from("  "), &identity)
                .unwrap()
                .is_empty()
        );
    }
}
