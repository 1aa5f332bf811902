//! The envelope dialect, seed 004's frames. Every server frame is
//! `{"type","data","session_id"?,"timestamp","error"?}`; a client frame is
//! `{"type","data"?,"session_id"?}`, and its fields may also sit beside
//! `type`, as seed clients send them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::chat::{Message, MessageStatus, MessageUsage};

/// A frame a client sends. It encodes the way the seed's clients send it,
/// the fields in `data`; [`ClientFrame::parse`] also reads the other
/// shapes they use.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum ClientFrame {
    InitSession(InitSession),
    UserPrompt(UserPrompt),
    Cancel,
    TreeEdit(TreeEdit),
    Ping,
    CloseSession,
}

/// Continues the conversation named by `conversation_id` (or by
/// `session_id`, seed 004's name for it), or creates one with `agent_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitSession {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Whether the client wants `debug` frames.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPrompt {
    pub prompt: String,
}

/// An RFC 6902 patch of the tree, made against `base_version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeEdit {
    pub patch: Value,
    pub base_version: i64,
}

impl ClientFrame {
    /// Reads a client's text frame; the error is the message of the
    /// `invalid_frame` error the client gets.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (kind, data) = split(text)?;
        Ok(match kind.as_str() {
            "init_session" => ClientFrame::InitSession(fields(&kind, data)?),
            "user_prompt" => ClientFrame::UserPrompt(fields(&kind, data)?),
            "cancel" => ClientFrame::Cancel,
            "tree_edit" => ClientFrame::TreeEdit(fields(&kind, data)?),
            "ping" => ClientFrame::Ping,
            "close_session" => ClientFrame::CloseSession,
            other => return Err(format!("unknown frame type '{other}'")),
        })
    }
}

/// A client frame's type and its fields (`data`, or the frame itself). A
/// `session_id` beside `data` (where seed 004 puts it) counts as one of
/// its fields unless `data` has its own.
fn split(text: &str) -> Result<(String, Value), String> {
    let mut frame: Map<String, Value> = serde_json::from_str(text)
        .map_err(|err| format!("a frame is a JSON object with a type: {err}"))?;
    let Some(Value::String(kind)) = frame.remove("type") else {
        return Err("a frame needs a string \"type\"".into());
    };
    let data = match frame.remove("data") {
        Some(Value::Object(mut data)) => {
            if let Some(session_id) = frame.remove("session_id") {
                data.entry("session_id").or_insert(session_id);
            }
            Value::Object(data)
        }
        Some(Value::Null) | None => Value::Object(frame),
        Some(_) => return Err("\"data\" must be an object".into()),
    };
    Ok((kind, data))
}

fn fields<T: serde::de::DeserializeOwned>(kind: &str, data: Value) -> Result<T, String> {
    serde_json::from_value(data).map_err(|err| format!("invalid {kind}: {err}"))
}

/// A frame the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerFrame {
    /// `type` and `data`.
    #[serde(flatten)]
    pub event: ServerEvent,
    /// The conversation the socket is attached to, once it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// RFC 3339.
    pub timestamp: String,
    /// An `error` frame's `data` again, where seed 004's clients read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<FrameError>,
}

impl ServerFrame {
    pub fn new(event: ServerEvent, session_id: Option<String>, timestamp: String) -> Self {
        let error = match &event {
            ServerEvent::Error(error) => Some(error.clone()),
            _ => None,
        };
        Self {
            event,
            session_id,
            timestamp,
            error,
        }
    }

    /// The frame as sent (see [`super::to_text`]).
    pub fn to_text(&self) -> String {
        super::to_text(self)
    }
}

/// A server frame's `type` and `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum ServerEvent {
    SessionReady(SessionReady),
    ChatHistory(ChatHistory),
    AssistantResponse(AssistantResponse),
    Reasoning(Reasoning),
    Debug(DebugNote),
    TreeUpdate(TreeUpdate),
    Error(FrameError),
    Pong(Pong),
}

/// The socket is attached to a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionReady {
    /// The conversation, under seed 004's name.
    pub session_id: String,
    pub conversation_id: String,
    pub agent_id: String,
    pub title: String,
    /// The conversation's tree; null when it has none.
    pub initial_tree: Option<Value>,
    pub tree_version: i64,
}

/// The conversation's messages, oldest first, right after `session_ready`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatHistory {
    pub messages: Vec<Message>,
}

/// The reply: a piece of its text while it streams, then all of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AssistantResponse {
    /// The whole reply, when the turn ended; `chunk` is false.
    Last {
        text: String,
        chunk: bool,
        message_id: String,
        status: MessageStatus,
        /// Null when the agent reported none; its `cost` only when known.
        token_usage: Option<MessageUsage>,
    },
    /// A piece of the text; `chunk` is true.
    Chunk { text: String, chunk: bool },
}

impl AssistantResponse {
    pub fn chunk(text: impl Into<String>) -> Self {
        AssistantResponse::Chunk {
            text: text.into(),
            chunk: true,
        }
    }

    pub fn last(
        text: impl Into<String>,
        message_id: impl Into<String>,
        status: MessageStatus,
        token_usage: Option<MessageUsage>,
    ) -> Self {
        AssistantResponse::Last {
            text: text.into(),
            chunk: false,
            message_id: message_id.into(),
            status,
            token_usage,
        }
    }
}

/// What the agent says it is doing: one step per frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reasoning {
    pub steps: Vec<String>,
}

/// Sent only to a client that asked for debug frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DebugNote {
    pub message: String,
    pub level: DebugLevel,
    /// The agent's raw data part, when the note is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DebugLevel {
    Info,
    Warn,
}

/// The tree changed: an RFC 6902 `delta` that takes it to `version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeUpdate {
    pub delta: Value,
    pub version: i64,
}

/// An error; the socket stays open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameError {
    pub code: String,
    pub message: String,
    /// Seconds before a `rate_limited` request may be made again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The tree's version, when a `stale_tree` edit was made against an
    /// older one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
}

impl FrameError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            retry_after: None,
            current_version: None,
        }
    }
}

/// The answer to a client's `ping`: `data` is `{}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Pong {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: &str = "2026-12-04T12:00:00.000000000+00:00";

    fn frame(event: ServerEvent) -> ServerFrame {
        ServerFrame::new(event, Some("conv-1".into()), NOW.into())
    }

    /// A frame's text is the text of the value it was built as before it had
    /// a type, and reads back as the frame.
    fn assert_sent_as(frame: ServerFrame, before: Value) {
        let text = frame.to_text();
        assert_eq!(text, before.to_string());
        let back: ServerFrame = serde_json::from_str(&text).unwrap();
        assert_eq!(back, frame);
    }

    fn message() -> Message {
        Message {
            id: "msg-2".into(),
            conversation_id: "conv-1".into(),
            seq: 2,
            role: crate::chat::MessageRole::Assistant,
            content: "42".into(),
            content_blocks: json!([{"type": "text", "text": "42"}]),
            status: MessageStatus::Complete,
            token_usage: None,
            agent_task_id: Some("task-1".into()),
            created_at: "2026-12-04T11:59:00Z".into(),
        }
    }

    #[test]
    fn session_ready_and_history_frames_round_trip() {
        let tree = json!({"id": "root", "label": "root", "children": []});
        let ready = SessionReady {
            session_id: "conv-1".into(),
            conversation_id: "conv-1".into(),
            agent_id: "math".into(),
            title: "Sums".into(),
            initial_tree: Some(tree.clone()),
            tree_version: 3,
        };
        assert_sent_as(
            frame(ServerEvent::SessionReady(ready)),
            json!({
                "type": "session_ready",
                "data": {
                    "session_id": "conv-1",
                    "conversation_id": "conv-1",
                    "agent_id": "math",
                    "title": "Sums",
                    "initial_tree": tree,
                    "tree_version": 3,
                },
                "session_id": "conv-1",
                "timestamp": NOW,
            }),
        );
        let messages = vec![message()];
        assert_sent_as(
            frame(ServerEvent::ChatHistory(ChatHistory {
                messages: messages.clone(),
            })),
            json!({
                "type": "chat_history",
                "data": {"messages": messages},
                "session_id": "conv-1",
                "timestamp": NOW,
            }),
        );
    }

    #[test]
    fn assistant_response_frames_round_trip() {
        assert_sent_as(
            frame(ServerEvent::AssistantResponse(AssistantResponse::chunk(
                "4",
            ))),
            json!({
                "type": "assistant_response",
                "data": {"text": "4", "chunk": true},
                "session_id": "conv-1",
                "timestamp": NOW,
            }),
        );
        for usage in [None, Some(MessageUsage::tokens(12, 3))] {
            assert_sent_as(
                frame(ServerEvent::AssistantResponse(AssistantResponse::last(
                    "42",
                    "msg-2",
                    MessageStatus::Complete,
                    usage,
                ))),
                json!({
                    "type": "assistant_response",
                    "data": {
                        "text": "42",
                        "chunk": false,
                        "message_id": "msg-2",
                        "status": MessageStatus::Complete,
                        "token_usage": usage,
                    },
                    "session_id": "conv-1",
                    "timestamp": NOW,
                }),
            );
        }
    }

    #[test]
    fn reasoning_debug_tree_and_pong_frames_round_trip() {
        let step = "calculator({\"expression\":\"6 * 7\"}) → 42".to_owned();
        assert_sent_as(
            frame(ServerEvent::Reasoning(Reasoning {
                steps: vec![step.clone()],
            })),
            json!({"type": "reasoning", "data": {"steps": [step]}, "session_id": "conv-1", "timestamp": NOW}),
        );
        let data = json!({"chart": [1, 2]});
        assert_sent_as(
            frame(ServerEvent::Debug(DebugNote {
                message: data.to_string(),
                level: DebugLevel::Info,
                data: Some(data.clone()),
            })),
            json!({
                "type": "debug",
                "data": {"message": data.to_string(), "level": "info", "data": data},
                "session_id": "conv-1",
                "timestamp": NOW,
            }),
        );
        let message = "agent unreachable; attempt 2 of 3 in 1000 ms";
        assert_sent_as(
            frame(ServerEvent::Debug(DebugNote {
                message: message.into(),
                level: DebugLevel::Warn,
                data: None,
            })),
            json!({"type": "debug", "data": {"message": message, "level": "warn"}, "session_id": "conv-1", "timestamp": NOW}),
        );
        let delta = json!([{"op": "replace", "path": "/label", "value": "Garden"}]);
        assert_sent_as(
            frame(ServerEvent::TreeUpdate(TreeUpdate {
                delta: delta.clone(),
                version: 4,
            })),
            json!({"type": "tree_update", "data": {"delta": delta, "version": 4}, "session_id": "conv-1", "timestamp": NOW}),
        );
        assert_sent_as(
            ServerFrame::new(ServerEvent::Pong(Pong {}), None, NOW.into()),
            json!({"type": "pong", "data": {}, "timestamp": NOW}),
        );
    }

    #[test]
    fn error_frames_carry_the_error_twice_with_its_extra_fields() {
        let plain = FrameError::new("no_session", "send init_session first");
        assert_sent_as(
            ServerFrame::new(ServerEvent::Error(plain), None, NOW.into()),
            json!({
                "type": "error",
                "data": {"code": "no_session", "message": "send init_session first"},
                "error": {"code": "no_session", "message": "send init_session first"},
                "timestamp": NOW,
            }),
        );
        let limited = FrameError {
            retry_after: Some(7),
            ..FrameError::new("rate_limited", "too many turns")
        };
        let body = json!({"code": "rate_limited", "message": "too many turns", "retry_after": 7});
        assert_sent_as(
            frame(ServerEvent::Error(limited)),
            json!({"type": "error", "data": body, "error": body, "session_id": "conv-1", "timestamp": NOW}),
        );
        let stale = FrameError {
            current_version: Some(5),
            ..FrameError::new("stale_tree", "reload")
        };
        let body = json!({"code": "stale_tree", "message": "reload", "current_version": 5});
        assert_sent_as(
            frame(ServerEvent::Error(stale)),
            json!({"type": "error", "data": body, "error": body, "session_id": "conv-1", "timestamp": NOW}),
        );
    }

    #[test]
    fn client_frames_round_trip() {
        let frames = [
            ClientFrame::InitSession(InitSession {
                conversation_id: Some("conv-1".into()),
                agent_id: Some("math".into()),
                debug: Some(true),
                ..InitSession::default()
            }),
            ClientFrame::InitSession(InitSession::default()),
            ClientFrame::UserPrompt(UserPrompt {
                prompt: "What is 6 × 7?".into(),
            }),
            ClientFrame::Cancel,
            ClientFrame::TreeEdit(TreeEdit {
                patch: json!([{"op": "add", "path": "/children/-", "value": {"id": "a", "label": "A", "children": []}}]),
                base_version: 2,
            }),
            ClientFrame::Ping,
            ClientFrame::CloseSession,
        ];
        for frame in frames {
            let text = serde_json::to_string(&frame).unwrap();
            assert_eq!(ClientFrame::parse(&text), Ok(frame), "{text}");
        }
        assert_eq!(
            serde_json::to_string(&ClientFrame::UserPrompt(UserPrompt {
                prompt: "hi".into()
            }))
            .unwrap(),
            r#"{"type":"user_prompt","data":{"prompt":"hi"}}"#
        );
        assert_eq!(
            serde_json::to_string(&ClientFrame::Ping).unwrap(),
            r#"{"type":"ping"}"#
        );
    }

    #[test]
    fn client_frames_are_read_in_every_shape_seed_clients_send() {
        assert_eq!(
            ClientFrame::parse(r#"{"type":"user_prompt","prompt":"hi"}"#),
            Ok(ClientFrame::UserPrompt(UserPrompt {
                prompt: "hi".into()
            }))
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"init_session","data":{},"session_id":"conv-1"}"#),
            Ok(ClientFrame::InitSession(InitSession {
                session_id: Some("conv-1".into()),
                ..InitSession::default()
            }))
        );
        assert_eq!(
            ClientFrame::parse(
                r#"{"type":"init_session","data":{"session_id":"mine"},"session_id":"other"}"#
            ),
            Ok(ClientFrame::InitSession(InitSession {
                session_id: Some("mine".into()),
                ..InitSession::default()
            }))
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"cancel","data":null,"extra":1}"#),
            Ok(ClientFrame::Cancel)
        );
    }

    #[test]
    fn unreadable_client_frames_say_why_as_they_always_did() {
        let cases = [
            (
                "not json",
                "a frame is a JSON object with a type: expected ident at line 1 column 2",
            ),
            (
                "[1]",
                "a frame is a JSON object with a type: invalid type: sequence, expected a map at line 1 column 0",
            ),
            (r#"{"data":{}}"#, "a frame needs a string \"type\""),
            (r#"{"type":5}"#, "a frame needs a string \"type\""),
            (
                r#"{"type":"ping","data":[1]}"#,
                "\"data\" must be an object",
            ),
            (r#"{"type":"shout"}"#, "unknown frame type 'shout'"),
            (
                r#"{"type":"user_prompt","data":{}}"#,
                "invalid user_prompt: missing field `prompt`",
            ),
            (
                r#"{"type":"user_prompt","prompt":5}"#,
                "invalid user_prompt: invalid type: integer `5`, expected a string",
            ),
            (
                r#"{"type":"tree_edit","patch":[]}"#,
                "invalid tree_edit: missing field `base_version`",
            ),
            (
                r#"{"type":"init_session","debug":"yes"}"#,
                "invalid init_session: invalid type: string \"yes\", expected a boolean",
            ),
        ];
        for (text, why) in cases {
            assert_eq!(ClientFrame::parse(text), Err(why.to_owned()), "{text}");
        }
    }
}
