//! The compact dialect, seed 001's flat frames (OMNI2's ChatWidget). The
//! server greets with `welcome`; the client sends `message`; the server
//! answers `token` per chunk, then `done`, or `error` with `error` a text.

use serde::{Deserialize, Serialize};

use crate::chat::{Cost, MessageStatus};

/// A frame a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Message { text: String },
    Ping,
}

impl ClientFrame {
    /// Reads a client's text frame; the error is the text of the `error`
    /// frame the client gets.
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text)
            .map_err(|err| format!("expected {{\"type\":\"message\",\"text\":\"…\"}}: {err}"))
    }
}

/// A frame the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome {
        text: String,
    },
    Pong,
    /// A piece of the reply.
    Token {
        text: String,
    },
    Done {
        result: DoneResult,
    },
    Error {
        /// What went wrong, as a text: the seed's clients show it.
        error: String,
        /// Confab's error code, when a request was refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        /// Seconds before a `rate_limited` message may be sent again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
}

impl ServerFrame {
    /// The frame as sent (see [`super::to_text`]).
    pub fn to_text(&self) -> String {
        super::to_text(self)
    }
}

/// How a turn ended, in seed 001's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneResult {
    /// Input and output tokens together; 0 when the agent reported none.
    pub tokens_used: u64,
    /// What the reply's LLM calls cost, when the agent reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// The tools the turn ran, each once, in the order first used.
    pub tools_used: Vec<String>,
    /// How many tool calls the turn made.
    pub tool_calls: usize,
    pub message_id: String,
    pub conversation_id: String,
    pub status: MessageStatus,
    /// The whole reply.
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// A frame's text is the text of the value it was built as before it had
    /// a type, and reads back as the frame.
    fn assert_sent_as(frame: ServerFrame, before: Value) {
        let text = frame.to_text();
        assert_eq!(text, before.to_string());
        let back: ServerFrame = serde_json::from_str(&text).unwrap();
        assert_eq!(back, frame);
    }

    #[test]
    fn server_frames_round_trip() {
        let welcome = "Connected to Confab. Send {\"type\":\"message\",\"text\":\"…\"}.";
        assert_sent_as(
            ServerFrame::Welcome {
                text: welcome.into(),
            },
            json!({"type": "welcome", "text": welcome}),
        );
        assert_sent_as(ServerFrame::Pong, json!({"type": "pong"}));
        assert_sent_as(
            ServerFrame::Token { text: "4".into() },
            json!({"type": "token", "text": "4"}),
        );
        assert_sent_as(
            ServerFrame::Done {
                result: DoneResult {
                    tokens_used: 57,
                    cost: None,
                    tools_used: vec!["calculator".into()],
                    tool_calls: 2,
                    message_id: "msg-2".into(),
                    conversation_id: "conv-1".into(),
                    status: MessageStatus::Complete,
                    text: "42 and 43".into(),
                },
            },
            json!({"type": "done", "result": {
                "tokens_used": 57,
                "tools_used": ["calculator"],
                "tool_calls": 2,
                "message_id": "msg-2",
                "conversation_id": "conv-1",
                "status": "complete",
                "text": "42 and 43",
            }}),
        );
    }

    #[test]
    fn error_frames_round_trip_with_and_without_a_code() {
        let why = "expected {\"type\":\"message\",\"text\":\"…\"}: missing field `type`";
        assert_sent_as(
            ServerFrame::Error {
                error: why.into(),
                code: None,
                retry_after: None,
            },
            json!({"type": "error", "error": why}),
        );
        assert_sent_as(
            ServerFrame::Error {
                error: "the agent failed".into(),
                code: Some("agent_failed".into()),
                retry_after: None,
            },
            json!({"type": "error", "error": "the agent failed", "code": "agent_failed"}),
        );
        let mut limited =
            json!({"type": "error", "error": "too many turns", "code": "rate_limited"});
        limited["retry_after"] = 7.into();
        assert_sent_as(
            ServerFrame::Error {
                error: "too many turns".into(),
                code: Some("rate_limited".into()),
                retry_after: Some(7),
            },
            limited,
        );
    }

    #[test]
    fn client_frames_round_trip_and_unreadable_ones_say_why() {
        for frame in [
            ClientFrame::Message {
                text: "What is 6 × 7?".into(),
            },
            ClientFrame::Ping,
        ] {
            let text = serde_json::to_string(&frame).unwrap();
            assert_eq!(ClientFrame::parse(&text), Ok(frame), "{text}");
        }
        assert_eq!(
            ClientFrame::parse(r#"{"type":"message","text":"hi","extra":1}"#),
            Ok(ClientFrame::Message { text: "hi".into() })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"text":"hi"}"#),
            Err("expected {\"type\":\"message\",\"text\":\"…\"}: missing field `type` at line 1 column 13".into())
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"shout"}"#),
            Err("expected {\"type\":\"message\",\"text\":\"…\"}: unknown variant `shout`, expected `message` or `ping` at line 1 column 15".into())
        );
    }
}
