//! What both dialects share: the socket's loop, the conversation it is
//! attached to, and the turn whose events it forwards.
//!
//! The loop follows the actix-ws example: `select` over the client's
//! frames, the events of the turn being followed, news of turns started,
//! and a heartbeat that pings the client and drops it once it has been
//! silent for two intervals.
//!
//! Several sockets (tabs) on one conversation all see its turns, whoever
//! started them (this socket, another tab, an HTTP client): a socket
//! attached to a conversation follows the log of the turn in flight there
//! ([`crate::turns::in_flight::InFlight::log`]), read from its first event.
//! It looks for one when it attaches, each time a turn starts in its
//! conversation ([`crate::turns::notices`]: a socket watches only the
//! conversation it is attached to, and is never woken by another's), and
//! when the turn it followed ends; a turn's claim is released before its
//! `done`, so an ended turn is never picked up twice, and one started
//! meanwhile is not missed. Tree edits made over one socket reach the
//! others on the conversation the same way.
//!
//! A turn asked for over a socket takes a permit from its user's turn
//! budget like any other ([`Conn::prepare`]); a refusal is an `error`
//! frame with code `rate_limited` or `budget_exceeded` and `retry_after`
//! (seconds), or `budget_unavailable`. The frame's error object has no
//! place for the budget's limit; its message names it, in llm-proxy's words.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_ws::{
    AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Closed, Session,
};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::chat::ChatEvent;
use confab_protocol::ids::{ConversationId, UserId};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::AppState;
use crate::a2a::client::Trace;
use crate::a2a::select;
use crate::domain::{ConversationTitle, MessageText};
use crate::error::ChatError;
use crate::routes::CallerId;
use crate::store::conversations;
use crate::store::models::ConversationRow;
use crate::trees::{self, EditRefused};
use crate::turns::begin::begin;
use crate::turns::budget::TurnPermit;
use crate::turns::log::TurnLog;
use crate::turns::notices::{Notice, TreeEdited, Watch};

/// Tells the sockets apart, for tree edits announced to the others.
static SOCKETS: AtomicU64 = AtomicU64::new(1);

/// What the socket does after a frame or an event.
pub enum Flow {
    Continue,
    Close(CloseReason),
}

/// Why a socket ended, for the log.
#[derive(Debug)]
pub enum End {
    ClientClosed,
    ClientGone,
    Closed,
    Silent,
    TooLarge,
}

/// The text and the reasoning steps of the turn being followed so far.
#[derive(Debug, Default)]
pub struct TurnProgress {
    pub text: String,
    pub steps: Vec<String>,
}

impl TurnProgress {
    fn record(&mut self, event: &ChatEvent) {
        match event {
            ChatEvent::Text { text } => self.text.push_str(text),
            ChatEvent::Reasoning { text } => self.steps.push(text.clone()),
            _ => {}
        }
    }
}

/// One dialect of the socket (DESIGN §9).
pub trait Dialect {
    /// Right after the handshake.
    async fn open(&mut self, conn: &mut Conn) -> Result<Flow, Closed>;
    /// A text frame from the client.
    async fn frame(&mut self, conn: &mut Conn, text: &str) -> Result<Flow, Closed>;
    /// A frame that cannot be read at all (binary).
    async fn unreadable(&mut self, conn: &mut Conn, why: &str) -> Result<Flow, Closed>;
    /// An event of the turn followed; `progress` already includes it.
    async fn event(&mut self, conn: &mut Conn, event: &ChatEvent) -> Result<Flow, Closed>;
}

/// A socket's side of the session, handed to its dialect.
pub struct Conn {
    id: u64,
    ws: Session,
    pub state: Arc<AppState>,
    /// The caller's id, parsed once for the store and the turns.
    user_id: UserId,
    /// The personal API key the socket was opened with, for its turns.
    api_key_id: Option<String>,
    /// Of the upgrade request, passed on with every turn started here.
    pub trace: Trace,
    conversation: Option<ConversationId>,
    turn: Option<BoxStream<'static, (u64, ChatEvent)>>,
    pub progress: TurnProgress,
    /// News of the attached conversation.
    watch: Option<Watch>,
}

/// A prompt that may start a turn: its text, and the permit for the turn.
pub struct Prompt {
    text: MessageText,
    permit: TurnPermit,
}

impl Conn {
    pub fn new(ws: Session, state: Arc<AppState>, caller: Caller, trace: Trace) -> Self {
        Self {
            id: SOCKETS.fetch_add(1, Ordering::Relaxed),
            ws,
            state,
            user_id: caller.user(),
            api_key_id: caller.api_key_id,
            trace,
            conversation: None,
            turn: None,
            progress: TurnProgress::default(),
            watch: None,
        }
    }

    /// Applies the client's edit of the tree of `conversation_id` (the
    /// conversation attached) and tells the other sockets on it.
    pub async fn edit_tree(
        &self,
        conversation_id: &ConversationId,
        patch: &Value,
        base_version: i64,
    ) -> Result<i64, EditRefused> {
        let version = trees::edit(
            &self.state.db,
            self.user_id(),
            conversation_id,
            patch,
            base_version,
            self.state.chat.tree_limits(),
        )
        .await?;
        let edited = TreeEdited {
            instance: String::new(),
            socket: self.id,
            user_id: self.user_id.clone(),
            delta: patch.clone(),
            version,
        };
        edited.announce(&self.state.notices, conversation_id);
        Ok(version)
    }

    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    /// The conversation this socket is attached to.
    pub fn conversation(&self) -> Option<&ConversationId> {
        self.conversation.as_ref()
    }

    /// Attaches the socket to a conversation the caller owns, and follows
    /// its turn in flight if there is one. It watches the conversation
    /// before it looks, so a turn that starts meanwhile is not missed.
    pub async fn attach(&mut self, conversation_id: ConversationId) {
        let watching = self.watch.as_ref().map(Watch::conversation_id);
        if watching != Some(&conversation_id) {
            self.watch = Some(self.state.notices.watch(&conversation_id));
        }
        self.conversation = Some(conversation_id);
        self.follow(None).await;
    }

    /// Follows `started` (a turn this socket just began) or else the turn
    /// in flight in the conversation, unless a turn is followed already
    /// (the next one is looked for when it ends).
    pub async fn follow(&mut self, started: Option<Arc<TurnLog>>) {
        if self.turn.is_some() {
            return;
        }
        let Some(conversation) = &self.conversation else {
            return;
        };
        let log = match started {
            Some(log) => Some(log),
            None => self.state.in_flight.log(&self.user_id, conversation).await,
        };
        if let Some(log) = log {
            self.turn = Some(log.subscribe(0).boxed());
            self.progress = TurnProgress::default();
        }
    }

    /// The caller's conversation `id`: 404 when it is not theirs.
    pub async fn owned(&self, id: &ConversationId) -> Result<ConversationRow, ApiError> {
        Ok(conversations::owned(&self.state.db, self.user_id(), id).await?)
    }

    /// A new conversation of the caller with `agent_id` or the default agent.
    pub async fn create(&self, agent_id: Option<String>) -> Result<ConversationRow, ApiError> {
        let agent_id = select::choose(
            &self.state.agents,
            agent_id,
            None,
            &self.state.chat.default_agent,
        )
        .await?;
        let row = conversations::new_row(self.user_id(), ConversationTitle::untitled(), agent_id);
        conversations::create(&self.state.db, &row).await?;
        Ok(row)
    }

    /// A prompt checked, with a permit from the user's turn budget (429
    /// `rate_limited` when it is spent), before anything is written.
    pub async fn prepare(&self, prompt: String) -> Result<Prompt, ApiError> {
        let text = MessageText::parse(prompt, self.state.chat.max_message_chars)?;
        let permit = self
            .state
            .turn_budget
            .admit(self.user_id(), self.api_key_id.as_deref())
            .await?;
        Ok(Prompt { text, permit })
    }

    /// Starts a turn in the attached conversation and follows it.
    pub async fn prompt(&mut self, prompt: Prompt) -> Result<(), ApiError> {
        let conversation_id = self.conversation.clone().ok_or(ChatError::NoSession)?;
        let started = begin(
            self.state.turn_services(),
            prompt.permit,
            &conversation_id,
            prompt.text,
            self.trace.clone(),
        )
        .await?;
        self.follow(Some(started.log)).await;
        Ok(())
    }

    /// Sends a frame, encoded by its dialect.
    pub async fn send(&mut self, frame: String) -> Result<(), Closed> {
        self.ws.text(frame).await
    }
}

pub async fn run<D: Dialect>(
    mut conn: Conn,
    mut from_client: AggregatedMessageStream,
    mut dialect: D,
) -> End {
    let interval = Duration::from_millis(conn.state.chat.ws_heartbeat_ms.max(10));
    let mut heartbeat = tokio::time::interval(interval);
    let mut last_heard = Instant::now();
    let mut flow = dialect.open(&mut conn).await;
    loop {
        match flow {
            Ok(Flow::Continue) => {}
            Ok(Flow::Close(reason)) => {
                close(conn.ws, reason).await;
                return End::Closed;
            }
            Err(Closed) => return End::ClientGone,
        }
        let turn = &mut conn.turn;
        let watch = &mut conn.watch;
        flow = tokio::select! {
            message = from_client.next() => {
                last_heard = Instant::now();
                match message {
                    Some(Ok(AggregatedMessage::Text(text))) => dialect.frame(&mut conn, &text).await,
                    Some(Ok(AggregatedMessage::Binary(_))) => {
                        dialect.unreadable(&mut conn, "binary frames are not accepted; send JSON as text").await
                    }
                    Some(Ok(AggregatedMessage::Ping(bytes))) => conn.ws.pong(&bytes).await.map(|()| Flow::Continue),
                    Some(Ok(AggregatedMessage::Pong(_))) => Ok(Flow::Continue),
                    Some(Ok(AggregatedMessage::Close(reason))) => {
                        let _ = conn.ws.close(reason).await;
                        return End::ClientClosed;
                    }
                    Some(Err(actix_ws::ProtocolError::Overflow)) => {
                        let reason = format!("a frame may have at most {} bytes", super::MAX_FRAME_BYTES);
                        close(conn.ws, CloseReason { code: CloseCode::Size, description: Some(reason) }).await;
                        return End::TooLarge;
                    }
                    Some(Err(_)) | None => return End::ClientGone,
                }
            }
            event = async {
                match turn.as_mut() {
                    Some(events) => events.next().await,
                    None => std::future::pending().await,
                }
            } => match event {
                Some((_, event)) => {
                    conn.progress.record(&event);
                    dialect.event(&mut conn, &event).await
                }
                None => {
                    conn.turn = None;
                    conn.follow(None).await;
                    Ok(Flow::Continue)
                }
            },
            notice = async {
                match watch.as_mut() {
                    Some(watch) => watch.next().await,
                    None => std::future::pending().await,
                }
            } => {
                metrics::counter!("chat_socket_wakeups_total").increment(1);
                match notice {
                    Ok(Notice::TurnStarted) => {
                        conn.follow(None).await;
                        Ok(Flow::Continue)
                    }
                    Ok(Notice::TreeEdited(edited)) => match edited.update_for(&conn.state.notices, conn.id, conn.user_id()) {
                        Some(event) => dialect.event(&mut conn, &event).await,
                        None => Ok(Flow::Continue),
                    },
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a chat socket fell behind its conversation's news");
                        conn.follow(None).await;
                        Ok(Flow::Continue)
                    }
                    // Not while the watch lives; stop listening rather than spin.
                    Err(broadcast::error::RecvError::Closed) => {
                        conn.watch = None;
                        Ok(Flow::Continue)
                    }
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > interval * 2 {
                    let reason = CloseReason { code: CloseCode::Away, description: Some("no answer to pings".into()) };
                    close(conn.ws, reason).await;
                    return End::Silent;
                }
                conn.ws.ping(b"").await.map(|()| Flow::Continue)
            }
        };
    }
}

/// Closing waits for the socket; a peer that does not read must not keep us.
async fn close(ws: Session, reason: CloseReason) {
    let _ = tokio::time::timeout(Duration::from_secs(5), ws.close(Some(reason))).await;
}
