//! `GET /chat/conversations/{id}/stream`: re-attaches to the conversation's
//! turn.
//!
//! While the turn runs, the events after `Last-Event-ID` (the header an
//! `EventSource` sends when it reconnects, or `?last_event_id=`), then the
//! live ones: no gap, no duplicate. Once it has ended, the finished reply as
//! `message_start`, `text`, its `data` parts and `done`. 404 for a
//! conversation that is not the caller's, or one without a reply yet.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::{Caller, header};
use confab_protocol::chat::{ChatEvent, MessageRole};
use confab_protocol::ids::ConversationId;
use serde::Deserialize;

use crate::AppState;
use crate::error::ChatError;
use crate::routes::CallerId;
use crate::routes::sse;
use crate::store::{conversations, messages};

#[derive(Debug, Deserialize)]
pub struct ResumeQuery {
    last_event_id: Option<u64>,
}

pub async fn resume(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<ConversationId>,
    query: web::Query<ResumeQuery>,
) -> Result<HttpResponse, ApiError> {
    let conversation_id = path.into_inner();
    let conversation = conversations::owned(&state.db, &caller.user(), &conversation_id).await?;
    let after = match header(&req, "last-event-id") {
        Some(id) => id.trim().parse::<u64>().map_err(|_| {
            ChatError::BadLastEventId("Last-Event-ID must be the number of an event of the turn")
        })?,
        None => query.last_event_id.unwrap_or(0),
    };
    if let Some(log) = state.in_flight.log(&caller.user(), &conversation_id) {
        return Ok(sse::response(log.subscribe(after)));
    }

    // The turn has ended: its reply is the newest message, its question the
    // one before.
    let newest = messages::page(&state.db, &caller.user(), &conversation_id, None, 2).await?;
    let (question, reply) = match newest.as_slice() {
        [question, reply] if reply.role == MessageRole::Assistant.as_str() => {
            (Some(question), reply)
        }
        [reply] if reply.role == MessageRole::Assistant.as_str() => (None, reply),
        _ => {
            return Err(ChatError::NoTurn.into());
        }
    };
    let reply = reply.to_api();
    let mut events = vec![ChatEvent::MessageStart {
        conversation_id: conversation_id.to_string(),
        user_message_id: question.map(|q| q.id.to_string()).unwrap_or_default(),
        message_id: reply.id.clone(),
        agent_id: conversation.agent_id.into_inner(),
    }];
    if !reply.content.is_empty() {
        events.push(ChatEvent::Text {
            text: reply.content.clone(),
        });
    }
    let data_blocks = reply
        .content_blocks
        .as_array()
        .into_iter()
        .flatten()
        .filter(|block| block["type"] == "data");
    events.extend(data_blocks.map(|block| ChatEvent::Data {
        data: block["data"].clone(),
    }));
    events.push(ChatEvent::Done {
        message_id: reply.id,
        conversation_id: conversation_id.into_inner(),
        status: reply.status,
        token_usage: reply.token_usage,
    });
    Ok(sse::response(futures_util::stream::iter((1..).zip(events))))
}
