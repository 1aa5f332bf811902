//! Request bodies and their size limit (`[limits] body_bytes`).
//!
//! On routes that put the identity in bodies (`inject_auth` with
//! `body_auth`) a body is read whole, as it is rewritten (see
//! `inject_auth`); elsewhere it is streamed to the upstream as it arrives,
//! cut off with 413 past the same limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::header::{self, HeaderMap};
use actix_web::web::{self, Bytes, BytesMut};
use confab_kit::ApiError;
use confab_protocol::auth::AuthContext;
use futures_util::StreamExt;
use reqwest::header::{CONTENT_LENGTH, HeaderMap as UpstreamHeaders, HeaderValue};

use super::inject_auth::inject_auth;
use super::upstream::{self, RequestBody};
use crate::error::GatewayError;

/// Chunks of a streamed request body in flight to the upstream; the reader
/// waits when they are all taken, so a slow upstream slows the client.
const BODY_CHUNKS_IN_FLIGHT: usize = 4;

/// The body to send upstream, its `Content-Length` put in `headers`, and
/// the flag a streamed body raises when it passes `limit`. With an
/// `identity` the body is a JSON object that gets it as `_auth`; rewritten,
/// it goes with its new length, not the client's.
pub async fn request_body(
    client_headers: &HeaderMap,
    payload: web::Payload,
    limit: usize,
    identity: Option<&AuthContext>,
    headers: &mut UpstreamHeaders,
) -> Result<(RequestBody, Arc<AtomicBool>), ApiError> {
    let declared = declared_length(client_headers)?;
    if declared.is_some_and(|length| length > limit) {
        return Err(GatewayError::BodyTooLarge(limit).into());
    }
    // A body is there when its length is not zero, or when it is chunked.
    let has_body = declared.map_or_else(
        || client_headers.contains_key(header::TRANSFER_ENCODING),
        |n| n > 0,
    );
    let overflowed = Arc::new(AtomicBool::new(false));
    let body = match (identity, has_body) {
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
    Ok((body, overflowed))
}

/// `Content-Length`, when the client declared one; a malformed one is 400.
fn declared_length(headers: &HeaderMap) -> Result<Option<usize>, GatewayError> {
    headers
        .get(header::CONTENT_LENGTH)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| GatewayError::BadContentLength)
        })
        .transpose()
}

/// The whole body, refused with 413 as soon as it passes `limit`.
async fn read_limited(mut payload: web::Payload, limit: usize) -> Result<Bytes, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(GatewayError::BadBody)?;
        if body.len() + chunk.len() > limit {
            return Err(GatewayError::BodyTooLarge(limit).into());
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
