//! The JSON-RPC 2.0 envelope and the error codes of the A2A JSON-RPC binding.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// JSON-RPC 2.0 request envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonRpcRequest<P> {
    pub jsonrpc: String,
    pub id: Value,
    pub method: String,
    pub params: P,
}

impl<P> JsonRpcRequest<P> {
    pub fn new(id: impl Into<Value>, method: &str, params: P) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            id: id.into(),
            method: method.into(),
            params,
        }
    }
}

/// JSON-RPC 2.0 response envelope: exactly one of `result` and `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonRpcResponse<R> {
    pub jsonrpc: String,
    pub id: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<R>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<JsonRpcError>,
}

impl<R> JsonRpcResponse<R> {
    pub fn success(id: Value, result: R) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            id,
            result: Some(result),
            error: None,
        }
    }

    pub fn failure(id: Value, error: JsonRpcError) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            id,
            result: None,
            error: Some(error),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonRpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl JsonRpcError {
    /// A plain JSON-RPC error (the -327xx/-326xx codes).
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// An A2A error (-32001…-32009). Its `data` is the array of error details
    /// the v1.0 binding asks for: a `google.rpc.ErrorInfo` naming the error
    /// (`reason`, e.g. `VERSION_NOT_SUPPORTED`), in the `a2a-protocol.org`
    /// domain, with `metadata` for the specifics (string values only, as
    /// ErrorInfo allows).
    pub fn a2a(code: i64, message: impl Into<String>, metadata: &[(&str, &str)]) -> Self {
        let metadata: Map<String, Value> = metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect();
        Self {
            code,
            message: message.into(),
            data: Some(json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": error_code::reason(code),
                "domain": "a2a-protocol.org",
                "metadata": metadata,
            }])),
        }
    }
}

/// Standard JSON-RPC and A2A error codes.
pub mod error_code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Confab's: a call without an accepted credential (HTTP 401). A2A
    /// leaves authentication to HTTP and defines no JSON-RPC code for it;
    /// this is the first of the implementation-defined server errors,
    /// which A2A's own codes (-32001 on) leave free.
    pub const UNAUTHENTICATED: i64 = -32000;
    pub const TASK_NOT_FOUND: i64 = -32001;
    pub const TASK_NOT_CANCELABLE: i64 = -32002;
    pub const PUSH_NOTIFICATION_NOT_SUPPORTED: i64 = -32003;
    pub const UNSUPPORTED_OPERATION: i64 = -32004;
    pub const CONTENT_TYPE_NOT_SUPPORTED: i64 = -32005;
    pub const INVALID_AGENT_RESPONSE: i64 = -32006;
    pub const EXTENDED_AGENT_CARD_NOT_CONFIGURED: i64 = -32007;
    pub const EXTENSION_SUPPORT_REQUIRED: i64 = -32008;
    pub const VERSION_NOT_SUPPORTED: i64 = -32009;

    /// The ErrorInfo `reason` of an A2A error code: the error's name in
    /// UPPER_SNAKE_CASE without "Error", as the specification spells it.
    pub fn reason(code: i64) -> &'static str {
        match code {
            TASK_NOT_FOUND => "TASK_NOT_FOUND",
            TASK_NOT_CANCELABLE => "TASK_NOT_CANCELABLE",
            PUSH_NOTIFICATION_NOT_SUPPORTED => "PUSH_NOTIFICATION_NOT_SUPPORTED",
            UNSUPPORTED_OPERATION => "UNSUPPORTED_OPERATION",
            CONTENT_TYPE_NOT_SUPPORTED => "CONTENT_TYPE_NOT_SUPPORTED",
            INVALID_AGENT_RESPONSE => "INVALID_AGENT_RESPONSE",
            EXTENDED_AGENT_CARD_NOT_CONFIGURED => "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
            EXTENSION_SUPPORT_REQUIRED => "EXTENSION_SUPPORT_REQUIRED",
            VERSION_NOT_SUPPORTED => "VERSION_NOT_SUPPORTED",
            _ => "UNKNOWN",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a2a_errors_carry_error_info_as_the_specification_shows() {
        // The "Example A2A-Specific Error Response" of the v1.0 specification,
        // JSON-RPC binding (timestamp left out).
        let expected = json!({
            "code": -32001,
            "message": "Task not found",
            "data": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "TASK_NOT_FOUND",
                "domain": "a2a-protocol.org",
                "metadata": {"taskId": "nonexistent-task-id"}
            }]
        });
        let error = JsonRpcError::a2a(
            error_code::TASK_NOT_FOUND,
            "Task not found",
            &[("taskId", "nonexistent-task-id")],
        );
        assert_eq!(serde_json::to_value(&error).unwrap(), expected);
        let parsed: JsonRpcError = serde_json::from_value(expected).unwrap();
        assert_eq!(parsed, error);
    }
}
