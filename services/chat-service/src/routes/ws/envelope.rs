//! The envelope dialect, seed 004's protocol: every server frame is
//! `{"type","data","session_id"?,"timestamp","error"?}`; a client frame is
//! `{"type","data"?,"session_id"?}` (the fields may also sit beside `type`).
//! `init_session` continues the conversation named by `conversation_id`,
//! or by `session_id` (the seed's name for it, in `data` or beside it, as a
//! seed client resuming after a disconnect sends it).
//!
//! Where it still differs from seed 004, on purpose (DESIGN §9):
//! - `error.code` is a text (`rate_limited`, `not_found`, …), as in every
//!   Confab error body, not the seed's number;
//! - `tree_update.delta` is an RFC 6902 JSON Patch with the tree's
//!   `version`, not the seed's `{action, path, node}`: a patch says every
//!   edit the seed's deltas can and applies with any JSON Patch library;
//! - `reasoning.steps` holds one step per frame, sent as the agent works;
//! - `debug` frames come only to a client that asks (`?debug=true` or
//!   `init_session {debug: true}`): they carry the agent's raw data.

use actix_ws::{CloseCode, CloseReason, Closed};
use confab_kit::ApiError;
use confab_protocol::chat::ChatEvent;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::session::{Conn, Dialect, Flow};
use super::tree_edit;
use crate::error::ChatError;
use crate::store::messages;
use crate::store::models::ConversationRow;

/// Messages sent in `chat_history`: as many as `…/history` answers with.
const HISTORY_MESSAGES: i64 = 1000;

pub struct Envelope {
    /// `?conversation_id=`, attached to on open.
    requested: Option<String>,
    /// Whether the client wants `debug` frames.
    debug: bool,
}

#[derive(Debug, Default, Deserialize)]
struct InitSession {
    conversation_id: Option<String>,
    /// Seed 004's name for the conversation.
    session_id: Option<String>,
    agent_id: Option<String>,
    debug: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct UserPrompt {
    prompt: String,
}

#[derive(Debug, Deserialize)]
struct TreeEdit {
    patch: Value,
    base_version: i64,
}

impl Envelope {
    pub fn new(requested: Option<String>, debug: bool) -> Self {
        Self { requested, debug }
    }

    /// Attaches to the conversation and sends `session_ready` and
    /// `chat_history`.
    async fn ready(&mut self, conn: &mut Conn, row: ConversationRow) -> Result<Flow, Closed> {
        let conversation = row.to_api(true);
        let history = match messages::page(
            &conn.state.db,
            conn.user_id(),
            &row.id,
            None,
            HISTORY_MESSAGES,
        )
        .await
        {
            Ok(rows) => rows,
            Err(err) => return error(conn, &ApiError::from(err)).await,
        };
        conn.attach(row.id.clone());
        let ready = json!({
            "session_id": row.id,
            "conversation_id": row.id,
            "agent_id": row.agent_id,
            "title": conversation.title,
            "initial_tree": conversation.tree,
            "tree_version": conversation.tree_version,
        });
        send(conn, "session_ready", ready).await?;
        let messages: Vec<_> = history.iter().map(|m| m.to_api()).collect();
        send(conn, "chat_history", json!({"messages": messages})).await?;
        Ok(Flow::Continue)
    }

    async fn init_session(&mut self, conn: &mut Conn, init: InitSession) -> Result<Flow, Closed> {
        if let Some(debug) = init.debug {
            self.debug = debug;
        }
        let wanted = init
            .conversation_id
            .filter(|id| !id.is_empty())
            .or(init.session_id.filter(|id| !id.is_empty()));
        let row = match (conn.conversation().map(str::to_owned), wanted) {
            (Some(attached), Some(wanted)) if attached != wanted => {
                let refused = ApiError::from(ChatError::SessionExists);
                return error(conn, &refused).await;
            }
            (Some(id), _) | (None, Some(id)) => conn.owned(&id).await,
            (None, None) => conn.create(init.agent_id).await,
        };
        match row {
            Ok(row) => self.ready(conn, row).await,
            Err(err) => error(conn, &err).await,
        }
    }

    async fn tree_edit(&mut self, conn: &mut Conn, edit: TreeEdit) -> Result<Flow, Closed> {
        let Some(conversation_id) = conn.conversation().map(str::to_owned) else {
            return error(conn, &no_session()).await;
        };
        let edited = tree_edit::edit(
            &conn.state,
            conn.user_id(),
            &conversation_id,
            &edit.patch,
            edit.base_version,
        )
        .await;
        match edited {
            Ok(version) => {
                conn.announce_tree_edit(edit.patch.clone(), version);
                send(
                    conn,
                    "tree_update",
                    json!({"delta": edit.patch, "version": version}),
                )
                .await?;
                Ok(Flow::Continue)
            }
            Err(refused) => {
                let (code, message, data) = refused.describe();
                send_error(conn, code, &message, data).await?;
                Ok(Flow::Continue)
            }
        }
    }
}

impl Dialect for Envelope {
    async fn open(&mut self, conn: &mut Conn) -> Result<Flow, Closed> {
        let Some(requested) = self.requested.take() else {
            return Ok(Flow::Continue);
        };
        match conn.owned(&requested).await {
            Ok(row) => self.ready(conn, row).await,
            Err(err) => {
                error(conn, &err).await?;
                Ok(Flow::Close(CloseReason {
                    code: CloseCode::Policy,
                    description: Some(err.message().to_owned()),
                }))
            }
        }
    }

    async fn frame(&mut self, conn: &mut Conn, text: &str) -> Result<Flow, Closed> {
        let (kind, data) = match split(text) {
            Ok(split) => split,
            Err(why) => return self.unreadable(conn, &why).await,
        };
        match kind.as_str() {
            "init_session" => match parse::<InitSession>(&kind, data) {
                Ok(init) => self.init_session(conn, init).await,
                Err(why) => self.unreadable(conn, &why).await,
            },
            "user_prompt" => match parse::<UserPrompt>(&kind, data) {
                Ok(_) if conn.conversation().is_none() => error(conn, &no_session()).await,
                Ok(prompt) => {
                    let started = match conn.prepare(prompt.prompt) {
                        Ok(prompt) => conn.prompt(prompt).await,
                        Err(refused) => Err(refused),
                    };
                    match started {
                        Ok(()) => Ok(Flow::Continue),
                        Err(err) => error(conn, &err).await,
                    }
                }
                Err(why) => self.unreadable(conn, &why).await,
            },
            "cancel" => {
                let canceled = conn
                    .conversation()
                    .map(|id| conn.state.in_flight.cancel(id, conn.user_id()));
                match canceled {
                    None => error(conn, &no_session()).await,
                    Some(false) => {
                        let none = ApiError::from(ChatError::NoTurnInFlight);
                        error(conn, &none).await
                    }
                    Some(true) => Ok(Flow::Continue),
                }
            }
            "tree_edit" => match parse::<TreeEdit>(&kind, data) {
                Ok(edit) => self.tree_edit(conn, edit).await,
                Err(why) => self.unreadable(conn, &why).await,
            },
            "ping" => {
                send(conn, "pong", json!({})).await?;
                Ok(Flow::Continue)
            }
            "close_session" => Ok(Flow::Close(CloseReason {
                code: CloseCode::Normal,
                description: Some("session closed".into()),
            })),
            other => {
                let why = format!("unknown frame type '{other}'");
                self.unreadable(conn, &why).await
            }
        }
    }

    async fn unreadable(&mut self, conn: &mut Conn, why: &str) -> Result<Flow, Closed> {
        send_error(conn, "invalid_frame", why, Value::Null).await?;
        Ok(Flow::Continue)
    }

    async fn event(&mut self, conn: &mut Conn, event: &ChatEvent) -> Result<Flow, Closed> {
        let (kind, data) = match event {
            ChatEvent::MessageStart { .. } => return Ok(Flow::Continue),
            ChatEvent::Text { text } => {
                ("assistant_response", json!({"text": text, "chunk": true}))
            }
            ChatEvent::Reasoning { text } => ("reasoning", json!({"steps": [text]})),
            ChatEvent::TreeUpdate { patch, version } => {
                ("tree_update", json!({"delta": patch, "version": version}))
            }
            ChatEvent::Error { error } => {
                send_error(conn, &error.code, &error.message, Value::Null).await?;
                return Ok(Flow::Continue);
            }
            ChatEvent::Data { data } if self.debug => (
                "debug",
                json!({"message": data.to_string(), "level": "info", "data": data}),
            ),
            ChatEvent::Retry {
                attempt,
                max_attempts,
                delay_ms,
            } if self.debug => {
                let message = format!(
                    "agent unreachable; attempt {attempt} of {max_attempts} in {delay_ms} ms"
                );
                ("debug", json!({"message": message, "level": "warn"}))
            }
            ChatEvent::Data { .. } | ChatEvent::Retry { .. } => return Ok(Flow::Continue),
            ChatEvent::Done {
                message_id,
                status,
                token_usage,
                ..
            } => (
                "assistant_response",
                json!({
                    "text": conn.progress.text,
                    "chunk": false,
                    "message_id": message_id,
                    "status": status,
                    "token_usage": token_usage,
                }),
            ),
        };
        send(conn, kind, data).await?;
        Ok(Flow::Continue)
    }
}

fn no_session() -> ApiError {
    ChatError::NoSession.into()
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

fn parse<T: DeserializeOwned>(kind: &str, data: Value) -> Result<T, String> {
    serde_json::from_value(data).map_err(|err| format!("invalid {kind}: {err}"))
}

fn envelope(conn: &Conn, kind: &str, data: Value) -> Map<String, Value> {
    let mut frame = Map::new();
    frame.insert("type".into(), kind.into());
    frame.insert("data".into(), data);
    if let Some(id) = conn.conversation() {
        frame.insert("session_id".into(), id.into());
    }
    frame.insert("timestamp".into(), chrono::Utc::now().to_rfc3339().into());
    frame
}

async fn send(conn: &mut Conn, kind: &str, data: Value) -> Result<(), Closed> {
    let frame = envelope(conn, kind, data);
    conn.send(&Value::Object(frame)).await
}

async fn send_error(
    conn: &mut Conn,
    code: &str,
    message: &str,
    extra: Value,
) -> Result<(), Closed> {
    let mut error = json!({"code": code, "message": message});
    let mut data = json!({"code": code, "message": message});
    if let (Value::Object(error), Value::Object(data), Value::Object(extra)) =
        (&mut error, &mut data, extra)
    {
        error.extend(extra.clone());
        data.extend(extra);
    }
    let mut frame = envelope(conn, "error", data);
    frame.insert("error".into(), error);
    conn.send(&Value::Object(frame)).await
}

/// An error frame; the connection stays open. A refusal to be retried
/// later (`rate_limited`) says when: `retry_after`, in seconds.
async fn error(conn: &mut Conn, err: &ApiError) -> Result<Flow, Closed> {
    let extra = match err.retry_after() {
        Some(secs) => json!({"retry_after": secs}),
        None => Value::Null,
    };
    send_error(conn, err.code(), err.message(), extra).await?;
    Ok(Flow::Continue)
}
