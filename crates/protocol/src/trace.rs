//! Live trace events of llm-proxy-service (DESIGN §10) and the frames of
//! `/ws/trace/{agent_id}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TraceKind {
    /// A call arrived (the request as sent).
    #[serde(rename = "llm.request")]
    Request,
    /// A streamed piece of the answer.
    #[serde(rename = "llm.delta")]
    Delta,
    /// The call finished (the assembled answer and its usage).
    #[serde(rename = "llm.response")]
    Response,
    /// The model asked for a tool call (assembled).
    #[serde(rename = "llm.tool_call")]
    ToolCall,
    /// The call failed.
    #[serde(rename = "llm.error")]
    Error,
}

impl TraceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceKind::Request => "llm.request",
            TraceKind::Delta => "llm.delta",
            TraceKind::Response => "llm.response",
            TraceKind::ToolCall => "llm.tool_call",
            TraceKind::Error => "llm.error",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "llm.request" => TraceKind::Request,
            "llm.delta" => TraceKind::Delta,
            "llm.response" => TraceKind::Response,
            "llm.tool_call" => TraceKind::ToolCall,
            "llm.error" => TraceKind::Error,
            _ => return None,
        })
    }
}

/// One trace event. `seq` orders every event of the proxy: a subscriber that
/// saw up to `seq` resumes with `?since=seq` and misses nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TraceEvent {
    pub seq: i64,
    pub kind: TraceKind,
    pub call_id: String,
    pub agent_id: Option<String>,
    pub user_id: Option<String>,
    pub conversation_id: Option<String>,
    pub data: Value,
    pub created_at: String,
}

/// A frame the server sends on `/ws/trace/{agent_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TraceFrame {
    /// Sent once, after the replay of `since`: from here on events are live.
    Live {
        last_seq: i64,
    },
    Trace {
        event: TraceEvent,
    },
}
