//! The client's request, parsed once at the edge.

use std::time::Instant;

use actix_web::web::Bytes;
use confab_protocol::openai::ChatCompletionRequest;
use serde_json::{Map, Value};

use crate::auth::CallIdentity;
use crate::error::ProxyError;

/// A chat-completion request, validated: the typed form everything reads,
/// and the exact bytes the client sent.
pub struct ClientRequest {
    pub parsed: ChatCompletionRequest,
    /// Kept because the row records the body verbatim, and the trace and an
    /// upstream get the client's JSON as sent, which the typed form would
    /// normalise (absent `content` becomes `null`, unmodelled nested fields
    /// are dropped).
    raw: Bytes,
}

impl ClientRequest {
    /// Parses and validates a request body.
    pub fn parse(raw: Bytes) -> Result<Self, ProxyError> {
        let value: Value = serde_json::from_slice(&raw).map_err(ProxyError::MalformedJson)?;
        if !value.is_object() {
            return Err(ProxyError::BodyNotObject);
        }
        let parsed: ChatCompletionRequest =
            serde_json::from_value(value).map_err(ProxyError::InvalidRequest)?;
        if parsed.messages.is_empty() {
            return Err(ProxyError::NoMessages);
        }
        Ok(Self { parsed, raw })
    }

    /// The JSON object the client sent, key for key.
    pub fn object(&self) -> Map<String, Value> {
        // `parse` accepted these bytes as an object, so this cannot fail.
        serde_json::from_slice(&self.raw).unwrap_or_default()
    }

    /// The body as the client sent it, for the recorded row.
    pub fn raw_text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// The call as the client made it.
pub struct CallRequest {
    pub identity: CallIdentity,
    pub request: ClientRequest,
    pub started: Instant,
}
