//! `GET /chat/conversations/{id}/messages?limit=&before_seq=`

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::chat::{Message, Page};
use confab_protocol::error::ErrorBody;
use confab_protocol::ids::ConversationId;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::error::ChatError;
use crate::routes::CallerId;
use crate::store::{conversations, messages};

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Messages in the page, 1 to 500 (100 when absent).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Only messages before this `seq` (the previous page's `next_cursor`).
    pub before_seq: Option<i64>,
}

/// A page of a conversation's messages, oldest first, newest page first.
#[utoipa::path(
    get,
    path = "/chat/conversations/{id}/messages",
    tag = "conversations",
    operation_id = "conversations_messages",
    params(("id" = String, Path, description = "The conversation's id (`conv-…`)."), PageQuery),
    responses(
        (status = 200, description = "A page of messages; `next_cursor` is the `before_seq` of the page before.", body = Page<Message>),
        (status = 400, description = "`bad_query`: `limit` or `before_seq` is not a number, or is given twice.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such conversation of the caller's.", body = ErrorBody),
        (status = 422, description = "`invalid_limit`.", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<ConversationId>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ChatError::InvalidLimit { max: MAX_LIMIT }.into());
    }
    let conversation_id = path.into_inner();
    conversations::owned(&state.db, &caller.user(), &conversation_id).await?;
    let rows = messages::page(
        &state.db,
        &caller.user(),
        &conversation_id,
        query.before_seq,
        limit,
    )
    .await?;
    // A full page may have older messages before it; the cursor is the
    // `before_seq` that fetches them.
    let next_cursor = match rows.first() {
        Some(first) if rows.len() as i64 == limit && first.seq > 1 => Some(first.seq.to_string()),
        _ => None,
    };
    Ok(HttpResponse::Ok().json(Page {
        items: rows.iter().map(|r| r.to_api()).collect(),
        next_cursor,
    }))
}
