//! `GET /chat/sessions/{id}/messages/stream`: seed 000's
//! `new EventSource('/api/chat/sessions/{id}/messages/stream')`, which
//! follows the conversation rather than one request: it stays open, gets
//! the turn in flight (if any) from its first event and then every later
//! turn of the conversation, whoever starts it (another tab, a `POST …/
//! messages/stream`, a WebSocket), each as `message_start`, `text_token`…,
//! `done`, with ids of the conversation ([`super::event_id`]).
//!
//! - Reconnecting with `Last-Event-ID` (an `EventSource` does it by itself;
//!   `?last_event_id=` works too) resumes right after that event, across
//!   turns: the rest of its turn, then the turns that started since. An id
//!   outside the documented form ([`super::event_id::PATTERN`]) is 422
//!   `bad_last_event_id`. A well-formed id that names no reply of this
//!   conversation (a question's `seq`, one not reached yet) is taken as the
//!   position it says, at most the newest reply's: the turns whose reply
//!   comes after it. An `EventSource` gives up for good on any answer but
//!   200, so a position it holds is served rather than refused.
//! - Without one, the stream starts with the turn in flight, or waits for
//!   the next one.
//! - A comment line (`: keep-alive`) goes out every `[chat]
//!   sse_keep_alive_ms` (15 s), so that no proxy closes a quiet stream and
//!   a client that left is noticed.
//! - The stream ends when the conversation is deleted (noticed at the next
//!   keep-alive).
//! - 404 for a conversation that is not the caller's; a user follows at
//!   most `[limits] followers_per_user` conversations at once (then 429).
//!
//! How it keeps up: the follower watches the conversation's news
//! ([`crate::turns::notices`]) before it looks at anything, then repeatedly
//! takes the first reply after the last turn it delivered, from storage:
//! a reply whose turn is in flight, or ended lately, is read from the
//! turn's log ([`crate::turns::in_flight::InFlight::turn_log`]); an older
//! one is rebuilt from storage. A turn's reply row and its log are known
//! together (the claim names the reply before the row is written), so no
//! turn is skipped, and none is delivered twice.

use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_kit::slots::UserSlot;
use confab_protocol::chat::MessageRole;
use confab_protocol::error::ErrorBody;
use confab_protocol::ids::{AgentId, ConversationId, UserId};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Interval, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;
use utoipa::IntoParams;

use super::encode::{self, SessionEvent};
use super::event_id::EventId;
use crate::AppState;
use crate::error::ChatError;
use crate::routes::CallerId;
use crate::store::models::MessageRow;
use crate::store::{conversations, messages};
use crate::turns::notices::Watch;

/// Frames waiting for a slow client. When full the follower waits for it;
/// the turns it follows do not (they log their events in memory).
const FRAMES_BUFFERED: usize = 32;

/// Seconds a client over its followers is told to wait.
const FOLLOWERS_RETRY_SECS: u64 = 5;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FollowQuery {
    /// The last event read (`R.E`, `R.sE` or `R.end`), when the
    /// `Last-Event-ID` header cannot be sent.
    #[param(pattern = r"^[0-9]{1,18}\.(s?[0-9]{1,19}|end)$")]
    last_event_id: Option<String>,
}

/// Follows the session's turns as SSE (seed 000's `EventSource`).
///
/// Stays open: the turn in flight, if any, then every later turn of the
/// conversation, whoever starts it, each as `message_start`,
/// `text_token`…, `done`. With `Last-Event-ID`, right after that event,
/// across turns. A `: keep-alive` comment every `chat.sse_keep_alive_ms`;
/// the stream ends when the conversation is deleted.
#[utoipa::path(
    get,
    path = "/chat/sessions/{id}/messages/stream",
    tag = "seeds",
    operation_id = "sessions_follow",
    params(
        ("id" = String, Path, description = "The session's id (a conversation's, `conv-…`)."),
        FollowQuery,
        ("Last-Event-ID" = Option<String>, Header, nullable = false, pattern = r"^[0-9]{1,18}\.(s?[0-9]{1,19}|end)$", description = "The last event read (an `EventSource` sends it when it reconnects); wins over `last_event_id`. One that names no reply of the conversation is a position all the same: the stream goes on with the turns after `R`.")
    ),
    responses(
        (status = 200, description = "The conversation's turns, one event per `data:` line, ids of the conversation.", content_type = "text/event-stream", body = SessionEvent),
        (status = 400, description = "`bad_query`: the query cannot be read (`last_event_id` given twice, say).", body = ErrorBody),
        (status = 404, description = "`not_found`: no such conversation of the caller's.", body = ErrorBody),
        (status = 422, description = "`bad_last_event_id`: `Last-Event-ID` or `last_event_id` is not of the documented form.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the user follows `limits.followers_per_user` conversations already.", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait before trying again.")))
    ),
    security(("bearer" = []))
)]
pub async fn follow(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<ConversationId>,
    query: web::Query<FollowQuery>,
) -> Result<HttpResponse, ApiError> {
    let conversation_id = path.into_inner();
    let user_id = caller.user();
    let conversation = conversations::owned(&state.db, &user_id, &conversation_id).await?;
    // Each is held to its form, also the query the header wins over.
    let by_query = query
        .last_event_id
        .as_deref()
        .map(EventId::parse)
        .transpose()?;
    let last_event_id = match crate::routes::sse::last_event_id(&req)? {
        Some(id) => Some(EventId::parse(id)?),
        None => by_query,
    };
    let slot =
        state
            .followers
            .take(user_id.as_str())
            .ok_or_else(|| ChatError::TooManyFollowed {
                limit: state.followers.limit(),
                retry_after: FOLLOWERS_RETRY_SECS,
            })?;
    // Before anything is looked at: a turn that starts meanwhile is heard of.
    let watch = state.notices.watch(&conversation_id);
    let mut follower = Follower {
        state: state.into_inner(),
        user_id,
        conversation_id,
        agent_id: conversation.agent_id,
        watch,
        frames: None,
        _slot: slot,
    };
    let cursor = match last_event_id {
        Some(id) => follower.resume_after(id).await?,
        None => follower.at_the_present().await?,
    };
    let (frames, to_client) = mpsc::channel(FRAMES_BUFFERED);
    follower.frames = Some(frames);
    actix_web::rt::spawn(follower.run(cursor));
    Ok(crate::routes::sse::frames(ReceiverStream::new(to_client)))
}

/// Where the follower stands: every turn up to `after` (a reply's `seq`)
/// is delivered, except the `partial` one, delivered up to its event.
struct Cursor {
    after: i64,
    partial: Option<(MessageRow, EventId)>,
}

/// The next turn to deliver, and from which event.
enum Next {
    /// From its log, the events after `after`.
    Log {
        reply_seq: i64,
        log: std::sync::Arc<crate::turns::log::TurnLog>,
        after: u64,
    },
    /// Rebuilt from storage, the events after the `after`th.
    Stored { reply: Box<MessageRow>, after: u64 },
}

/// The client has gone, or the stream has to end.
struct Ended;

struct Follower {
    state: std::sync::Arc<AppState>,
    user_id: UserId,
    conversation_id: ConversationId,
    agent_id: AgentId,
    watch: Watch,
    frames: Option<mpsc::Sender<Bytes>>,
    /// Held while the stream lives.
    _slot: UserSlot,
}

impl Follower {
    /// Without `Last-Event-ID`: the turn in flight from its start, or
    /// whatever turn comes next.
    async fn at_the_present(&self) -> Result<Cursor, ApiError> {
        let newest =
            messages::newest_reply(&self.state.db, &self.user_id, &self.conversation_id).await?;
        let after = match newest {
            Some(reply) if reply.in_flight => reply.seq - 1,
            Some(reply) => reply.seq,
            None => 0,
        };
        Ok(Cursor {
            after,
            partial: None,
        })
    }

    /// Right after the event `id`; when its `R` is no reply of this
    /// conversation, after position `R` (at most the newest reply's): the
    /// turns whose reply comes later.
    async fn resume_after(&self, id: EventId) -> Result<Cursor, ApiError> {
        let reply = messages::at_seq(
            &self.state.db,
            &self.user_id,
            &self.conversation_id,
            id.reply_seq(),
        )
        .await?
        .filter(|row| row.role == MessageRole::Assistant.as_str());
        let Some(reply) = reply else {
            // A position past the newest reply is one the client cannot have
            // reached here: it has seen all there is, and gets what comes.
            let newest =
                messages::newest_reply(&self.state.db, &self.user_id, &self.conversation_id)
                    .await?
                    .map_or(0, |reply| reply.seq);
            return Ok(Cursor {
                after: id.reply_seq().min(newest),
                partial: None,
            });
        };
        Ok(match id {
            EventId::End { reply_seq } => Cursor {
                after: reply_seq,
                partial: None,
            },
            EventId::Live { .. } | EventId::Stored { .. } => Cursor {
                after: reply.seq,
                partial: Some((reply, id)),
            },
        })
    }

    async fn run(mut self, mut cursor: Cursor) {
        let every = Duration::from_millis(self.state.chat.sse_keep_alive_ms.max(10));
        let mut keep_alive = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Sent at once, so that the client (and any proxy) sees the stream
        // open before the first turn.
        if self
            .send(Bytes::from_static(b": following the conversation\n\n"))
            .await
            .is_err()
        {
            return;
        }
        loop {
            if self
                .deliver_all(&mut cursor, &mut keep_alive)
                .await
                .is_err()
            {
                return;
            }
            let Some(frames) = self.frames.clone() else {
                return;
            };
            let woken = tokio::select! {
                notice = self.watch.next() => match notice {
                    // Any news may be a turn: look (a tree edit costs a query).
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => Ok(()),
                    // Not while the watch lives.
                    Err(broadcast::error::RecvError::Closed) => Err(Ended),
                },
                _ = keep_alive.tick() => self.keep_alive().await,
                () = frames.closed() => Err(Ended),
            };
            if woken.is_err() {
                return;
            }
        }
    }

    /// Delivers every turn there is after the cursor, moving it on.
    async fn deliver_all(
        &mut self,
        cursor: &mut Cursor,
        keep_alive: &mut Interval,
    ) -> Result<(), Ended> {
        while let Some(next) = self.next(cursor).await? {
            let reply_seq = match next {
                Next::Log {
                    reply_seq,
                    log,
                    after,
                } => {
                    let mut events = log.subscribe(after).boxed();
                    let Some(frames) = self.frames.clone() else {
                        return Err(Ended);
                    };
                    loop {
                        tokio::select! {
                            next = events.next() => match next {
                                Some((seq, event)) => {
                                    let id = encode::live_id(reply_seq, seq, &event);
                                    self.send(encode::frame(id, &event)).await?;
                                }
                                None => break,
                            },
                            _ = keep_alive.tick() => self.keep_alive().await?,
                            () = frames.closed() => return Err(Ended),
                        }
                    }
                    reply_seq
                }
                Next::Stored { reply, after } => {
                    let question = messages::at_seq(
                        &self.state.db,
                        &self.user_id,
                        &self.conversation_id,
                        reply.seq - 1,
                    )
                    .await
                    .map_err(|err| self.failed(&err.into()))?;
                    let events = encode::stored_turn(question.as_ref(), &reply, &self.agent_id);
                    let skip = usize::try_from(after).unwrap_or(usize::MAX);
                    for (id, event) in events.into_iter().skip(skip) {
                        self.send(encode::frame(id, &event)).await?;
                    }
                    reply.seq
                }
            };
            *cursor = Cursor {
                after: reply_seq,
                partial: None,
            };
        }
        Ok(())
    }

    /// The turn to deliver next, if there is one yet.
    async fn next(&self, cursor: &mut Cursor) -> Result<Option<Next>, Ended> {
        if let Some((reply, id)) = cursor.partial.take() {
            let log = self.turn_log(&reply).await;
            return Ok(Some(match (id, log) {
                (EventId::Live { event, .. }, Some(log)) => Next::Log {
                    reply_seq: reply.seq,
                    log,
                    after: event,
                },
                // Its log is gone (kept only so long): the turn again, whole.
                (EventId::Live { .. }, None) => Next::Stored {
                    reply: Box::new(reply),
                    after: 0,
                },
                (EventId::Stored { event, .. }, _) => Next::Stored {
                    reply: Box::new(reply),
                    after: event,
                },
                (EventId::End { .. }, _) => return Ok(None),
            }));
        }
        let reply = messages::next_reply(
            &self.state.db,
            &self.user_id,
            &self.conversation_id,
            cursor.after,
        )
        .await
        .map_err(|err| self.failed(&err.into()))?;
        let Some(reply) = reply else {
            return Ok(None);
        };
        if let Some(log) = self.turn_log(&reply).await {
            return Ok(Some(Next::Log {
                reply_seq: reply.seq,
                log,
                after: 0,
            }));
        }
        if reply.in_flight
            && self
                .state
                .in_flight
                .is_running(&self.user_id, &self.conversation_id)
                .await
        {
            // Only a turn that failed to start leaves a reply in flight with
            // no log; wait until the turn running now is over to tell.
            return Ok(None);
        }
        Ok(Some(Next::Stored {
            reply: Box::new(reply),
            after: 0,
        }))
    }

    async fn turn_log(
        &self,
        reply: &MessageRow,
    ) -> Option<std::sync::Arc<crate::turns::log::TurnLog>> {
        self.state
            .in_flight
            .turn_log(&self.user_id, &self.conversation_id, &reply.id)
            .await
    }

    /// A comment line, once the conversation is known to be still there.
    async fn keep_alive(&self) -> Result<(), Ended> {
        let exists = conversations::get(&self.state.db, &self.user_id, &self.conversation_id)
            .await
            .map_err(|err| self.failed(&err.into()))?;
        if exists.is_none() {
            tracing::debug!(conversation_id = %self.conversation_id, "followed conversation deleted");
            return Err(Ended);
        }
        self.send(Bytes::from_static(b": keep-alive\n\n")).await
    }

    async fn send(&self, frame: Bytes) -> Result<(), Ended> {
        match &self.frames {
            Some(frames) => frames.send(frame).await.map_err(|_| Ended),
            None => Err(Ended),
        }
    }

    /// Storage failed: the stream ends (the client reconnects with its
    /// `Last-Event-ID`).
    fn failed(&self, err: &ApiError) -> Ended {
        tracing::warn!(conversation_id = %self.conversation_id, error = %err.message(), "following a conversation failed");
        Ended
    }
}
