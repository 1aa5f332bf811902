//! `POST /chat/conversations/{id}/messages/stream`: one turn as SSE.

use std::convert::Infallible;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::AuthedJson;
use confab_protocol::chat::{MessageRole, MessageStatus, SendMessage};
use futures_util::StreamExt;
use serde_json::json;
use tokio_stream::wrappers::ReceiverStream;

use crate::AppState;
use crate::a2a::client::Trace;
use crate::domain::MessageText;
use crate::store::models::NewMessage;
use crate::store::{conversations, messages};
use crate::turns::{self, Turn};

pub async fn stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    request: AuthedJson<SendMessage>,
) -> Result<HttpResponse, ApiError> {
    let AuthedJson { caller, body } = request;
    let text = MessageText::parse(body.message, state.chat.max_message_chars)?;
    let conversation_id = path.into_inner();
    let conversation = conversations::get(&state.db, &caller.user_id, &conversation_id)
        .await?
        .ok_or_else(|| ApiError::not_found("conversation"))?;
    if !state.agents.contains(&conversation.agent_id) {
        return Err(ApiError::unprocessable(
            "unknown_agent",
            format!(
                "the conversation's agent '{}' is not registered",
                conversation.agent_id
            ),
        ));
    }
    // Claimed before anything is written, so a refused turn leaves no trace.
    let claim = state
        .in_flight
        .begin(&conversation_id, &caller.user_id)
        .ok_or_else(|| {
            ApiError::conflict(
                "turn_in_flight",
                "a reply is still being written in this conversation; wait for it or cancel it",
            )
        })?;
    let history = messages::page(
        &state.db,
        &caller.user_id,
        &conversation_id,
        None,
        state.chat.history_messages,
    )
    .await?;
    let user_message = messages::append(
        &state.db,
        &caller.user_id,
        &conversation_id,
        NewMessage {
            id: confab_kit::ids::new_id("msg"),
            role: MessageRole::User,
            content: text.as_str().to_owned(),
            content_blocks: json!([{"type": "text", "text": text.as_str()}]),
            status: MessageStatus::Complete,
            token_usage: None,
            agent_task_id: None,
        },
    )
    .await?
    .ok_or_else(|| ApiError::not_found("conversation"))?;
    let events = turns::start(Turn {
        db: state.db.clone(),
        client: state.a2a.clone(),
        user_id: caller.user_id,
        conversation_id,
        agent_id: conversation.agent_id.clone(),
        agents: state.agents.clone(),
        claim,
        user_message,
        text,
        history,
        trace: Trace::from_request(&req),
        tree: serde_json::from_str(&conversation.tree).unwrap_or_else(|_| json!({})),
        retry: state.retry,
    });
    let frames = ReceiverStream::new(events)
        .map(|(seq, event)| Ok::<_, Infallible>(Bytes::from(event.to_sse(seq))));
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(frames))
}
