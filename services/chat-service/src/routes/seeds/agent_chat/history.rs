//! `GET /chat/agent/chat/history/{session_id}?limit=`: the session's newest
//! `limit` messages (default 100, at most 1000), oldest first, as seed 003
//! reads them: `{session_id, message_count, messages: [{id, role, content,
//! content_blocks, created_at, token_usage, status}]}`. `message_count` is
//! every message of the session (it may be more than the page holds); a
//! reply still being written is in neither. 404 for a session that is not
//! the caller's; a `limit` that is not a number (empty included) is 400
//! `bad_query`, one outside 1 to 1000 is 422 `invalid_limit`.

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::error::ErrorBody;
use confab_protocol::ids::ConversationId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::request::{SeedMessage, seed_message};
use crate::AppState;
use crate::domain::PageLimit;
use crate::error::ChatError;
use crate::routes::CallerId;
use crate::store::{conversations, messages};

/// The seed's default page.
const DEFAULT_LIMIT: i64 = 100;
/// As many as the native `…/history` answers with.
const MAX_LIMIT: i64 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Messages, 1 to 1000 (100 when absent).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// A session's history as seed 003 reads it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeedHistory {
    pub session_id: ConversationId,
    /// Every message of the session (it may be more than the page holds).
    pub message_count: i64,
    /// The newest `limit`, oldest first.
    pub messages: Vec<SeedMessage>,
}

/// A session's newest messages, oldest first, in seed 003's form.
///
/// A reply still being written is in neither `messages` nor
/// `message_count`.
#[utoipa::path(
    get,
    path = "/chat/agent/chat/history/{session_id}",
    tag = "seeds",
    operation_id = "agent_chat_history",
    params(
        ("session_id" = String, Path, description = "The session's id (a conversation's, `conv-…`)."),
        HistoryQuery
    ),
    responses(
        (status = 200, description = "The session's messages.", body = SeedHistory),
        (status = 400, description = "`bad_query`: the query cannot be read (`limit` is not a number, or is given twice).", body = ErrorBody),
        (status = 404, description = "`not_found`: no such session of the caller's.", body = ErrorBody),
        (status = 422, description = "`invalid_limit`: not from 1 to 1000.", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn history(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<ConversationId>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = PageLimit::parse(query.limit, DEFAULT_LIMIT, MAX_LIMIT)?.get();
    let session_id = path.into_inner();
    conversations::get(&state.db, &caller.user(), &session_id)
        .await?
        .ok_or(ChatError::SessionNotFound)?;
    let rows = messages::page(&state.db, &caller.user(), &session_id, None, limit).await?;
    let message_count = messages::count(&state.db, &caller.user(), &session_id).await?;
    Ok(HttpResponse::Ok().json(SeedHistory {
        session_id,
        message_count,
        messages: rows.iter().map(seed_message).collect(),
    }))
}
