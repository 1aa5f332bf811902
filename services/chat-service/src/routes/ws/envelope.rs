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
//!   `init_session {debug: true}`): they carry the agent's raw data;
//! - the last `assistant_response`'s `token_usage` has the reply's `cost`
//!   when the agent reported one (`super::cost`), as every message does.

use actix_ws::{CloseCode, CloseReason, Closed};
use confab_kit::ApiError;
use confab_protocol::chat::ChatEvent;
use confab_protocol::ids::ConversationId;
use confab_protocol::ws::envelope::{
    AssistantResponse, ChatHistory, ClientFrame, DebugLevel, DebugNote, FrameError, InitSession,
    Pong, Reasoning, ServerEvent, ServerFrame, SessionReady, TreeEdit, TreeUpdate,
};

use super::session::{Conn, Dialect, Flow};
use crate::error::ChatError;
use crate::store::messages;
use crate::store::models::ConversationRow;
use crate::trees::EditRefused;

/// Messages sent in `chat_history`: as many as `…/history` answers with.
const HISTORY_MESSAGES: i64 = 1000;

pub struct Envelope {
    /// `?conversation_id=`, attached to on open.
    requested: Option<String>,
    /// Whether the client wants `debug` frames.
    debug: bool,
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
        conn.attach(row.id.clone()).await;
        let ready = SessionReady {
            session_id: row.id.to_string(),
            conversation_id: row.id.into_inner(),
            agent_id: row.agent_id.into_inner(),
            title: conversation.title,
            initial_tree: conversation.tree,
            tree_version: conversation.tree_version,
        };
        send(conn, ServerEvent::SessionReady(ready)).await?;
        let messages = history.iter().map(|m| m.to_api()).collect();
        send(conn, ServerEvent::ChatHistory(ChatHistory { messages })).await?;
        Ok(Flow::Continue)
    }

    async fn init_session(&mut self, conn: &mut Conn, init: InitSession) -> Result<Flow, Closed> {
        if let Some(debug) = init.debug {
            self.debug = debug;
        }
        let wanted = init
            .conversation_id
            .filter(|id| !id.is_empty())
            .or(init.session_id.filter(|id| !id.is_empty()))
            .map(ConversationId::from);
        let row = match (conn.conversation().cloned(), wanted) {
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
        let Some(conversation_id) = conn.conversation().cloned() else {
            return error(conn, &no_session()).await;
        };
        let edited = conn
            .edit_tree(&conversation_id, &edit.patch, edit.base_version)
            .await;
        match edited {
            Ok(version) => {
                let update = TreeUpdate {
                    delta: edit.patch,
                    version,
                };
                send(conn, ServerEvent::TreeUpdate(update)).await?;
                Ok(Flow::Continue)
            }
            Err(refused) => {
                send_error(conn, edit_refused(refused)).await?;
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
        match conn.owned(&ConversationId::from(requested)).await {
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
        let frame = match ClientFrame::parse(text) {
            Ok(frame) => frame,
            Err(why) => return self.unreadable(conn, &why).await,
        };
        match frame {
            ClientFrame::InitSession(init) => self.init_session(conn, init).await,
            ClientFrame::UserPrompt(_) if conn.conversation().is_none() => {
                error(conn, &no_session()).await
            }
            ClientFrame::UserPrompt(prompt) => {
                let started = match conn.prepare(prompt.prompt).await {
                    Ok(prompt) => conn.prompt(prompt).await,
                    Err(refused) => Err(refused),
                };
                match started {
                    Ok(()) => Ok(Flow::Continue),
                    Err(err) => error(conn, &err).await,
                }
            }
            ClientFrame::Cancel => {
                let canceled = match conn.conversation() {
                    Some(id) => Some(conn.state.in_flight.cancel(conn.user_id(), id).await),
                    None => None,
                };
                match canceled {
                    None => error(conn, &no_session()).await,
                    Some(false) => {
                        let none = ApiError::from(ChatError::NoTurnInFlight);
                        error(conn, &none).await
                    }
                    Some(true) => Ok(Flow::Continue),
                }
            }
            ClientFrame::TreeEdit(edit) => self.tree_edit(conn, edit).await,
            ClientFrame::Ping => {
                send(conn, ServerEvent::Pong(Pong {})).await?;
                Ok(Flow::Continue)
            }
            ClientFrame::CloseSession => Ok(Flow::Close(CloseReason {
                code: CloseCode::Normal,
                description: Some("session closed".into()),
            })),
        }
    }

    async fn unreadable(&mut self, conn: &mut Conn, why: &str) -> Result<Flow, Closed> {
        send_error(conn, FrameError::new("invalid_frame", why)).await?;
        Ok(Flow::Continue)
    }

    async fn event(&mut self, conn: &mut Conn, event: &ChatEvent) -> Result<Flow, Closed> {
        let event = match event {
            ChatEvent::MessageStart { .. } => return Ok(Flow::Continue),
            ChatEvent::Text { text } => {
                ServerEvent::AssistantResponse(AssistantResponse::chunk(text.as_str()))
            }
            ChatEvent::Reasoning { text } => ServerEvent::Reasoning(Reasoning {
                steps: vec![text.clone()],
            }),
            ChatEvent::TreeUpdate { patch, version } => ServerEvent::TreeUpdate(TreeUpdate {
                delta: patch.clone(),
                version: *version,
            }),
            ChatEvent::Error { error } => {
                send_error(conn, FrameError::new(&error.code, &error.message)).await?;
                return Ok(Flow::Continue);
            }
            ChatEvent::Data { data } if self.debug => ServerEvent::Debug(DebugNote {
                message: data.to_string(),
                level: DebugLevel::Info,
                data: Some(data.clone()),
            }),
            ChatEvent::Retry {
                attempt,
                max_attempts,
                delay_ms,
            } if self.debug => ServerEvent::Debug(DebugNote {
                message: format!(
                    "agent unreachable; attempt {attempt} of {max_attempts} in {delay_ms} ms"
                ),
                level: DebugLevel::Warn,
                data: None,
            }),
            ChatEvent::Data { .. } | ChatEvent::Retry { .. } => return Ok(Flow::Continue),
            ChatEvent::Done {
                message_id,
                status,
                token_usage,
                ..
            } => ServerEvent::AssistantResponse(AssistantResponse::last(
                conn.progress.text.as_str(),
                message_id.as_str(),
                *status,
                *token_usage,
            )),
        };
        send(conn, event).await?;
        Ok(Flow::Continue)
    }
}

fn no_session() -> ApiError {
    ChatError::NoSession.into()
}

fn frame(conn: &Conn, event: ServerEvent) -> ServerFrame {
    ServerFrame::new(
        event,
        conn.conversation().map(ToString::to_string),
        chrono::Utc::now().to_rfc3339(),
    )
}

async fn send(conn: &mut Conn, event: ServerEvent) -> Result<(), Closed> {
    let frame = frame(conn, event);
    conn.send(frame.to_text()).await
}

async fn send_error(conn: &mut Conn, error: FrameError) -> Result<(), Closed> {
    send(conn, ServerEvent::Error(error)).await
}

/// An error frame; the connection stays open. A refusal to be retried
/// later (`rate_limited`) says when: `retry_after`, in seconds.
async fn error(conn: &mut Conn, err: &ApiError) -> Result<Flow, Closed> {
    let error = FrameError {
        retry_after: err.retry_after(),
        ..FrameError::new(err.code(), err.message())
    };
    send_error(conn, error).await?;
    Ok(Flow::Continue)
}

/// The error a client gets for an edit of the tree that was refused.
fn edit_refused(refused: EditRefused) -> FrameError {
    match refused {
        EditRefused::Stale { current_version } => FrameError {
            current_version: Some(current_version),
            ..FrameError::new(
                "stale_tree",
                format!(
                    "the tree is at version {current_version}; reload it and edit that version"
                ),
            )
        },
        EditRefused::Invalid(err) => {
            let err = ApiError::from(err);
            FrameError::new(err.code(), err.message())
        }
    }
}
