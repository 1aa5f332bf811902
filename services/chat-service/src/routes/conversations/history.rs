//! `GET /chat/conversations/{id}/history`: the conversation (with its tree)
//! and its messages, oldest first, in one response.
//!
//! At most the newest [`MAX_HISTORY_MESSAGES`]; when there are more,
//! `next_cursor` is the `before_seq` that pages back through the rest with
//! `GET …/messages`.

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::chat::ConversationHistory;
use confab_protocol::error::ErrorBody;
use confab_protocol::ids::ConversationId;

use crate::AppState;
use crate::routes::CallerId;
use crate::store::{conversations, messages};

/// Keeps one response bounded (a few MB of text at most) however long the
/// conversation grew; a person reading a chat rarely scrolls back further.
pub const MAX_HISTORY_MESSAGES: i64 = 1000;

/// A conversation, with its tree, and its newest messages, oldest first.
///
/// At most 1000 messages; `next_cursor` is then the `before_seq` that
/// pages back through the rest with `GET …/messages`.
#[utoipa::path(
    get,
    path = "/chat/conversations/{id}/history",
    tag = "conversations",
    operation_id = "conversations_history",
    params(("id" = String, Path, description = "The conversation's id (`conv-…`).")),
    responses(
        (status = 200, description = "The conversation and its messages.", body = ConversationHistory),
        (status = 404, description = "`not_found`: no such conversation of the caller's.", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn history(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<ConversationId>,
) -> Result<HttpResponse, ApiError> {
    let conversation_id = path.into_inner();
    let conversation = conversations::owned(&state.db, &caller.user(), &conversation_id).await?;
    // Only messages the conversation had counted when it was read: a turn
    // appending meanwhile does not slip in messages its count leaves out.
    let rows = messages::page(
        &state.db,
        &caller.user(),
        &conversation_id,
        Some(conversation.message_count + 1),
        MAX_HISTORY_MESSAGES,
    )
    .await?;
    let next_cursor = match rows.first() {
        Some(first) if rows.len() as i64 == MAX_HISTORY_MESSAGES && first.seq > 1 => {
            Some(first.seq.to_string())
        }
        _ => None,
    };
    Ok(HttpResponse::Ok().json(ConversationHistory {
        conversation: conversation.to_api(true),
        messages: rows.iter().map(|row| row.to_api()).collect(),
        next_cursor,
    }))
}
