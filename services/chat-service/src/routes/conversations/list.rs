//! `GET /chat/conversations?agent_id=&limit=&cursor=`: the caller's
//! conversations, most recently updated first.
//!
//! A new message or a rename bumps `updated_at`, so the conversation in use
//! moves to the top, as a chat sidebar expects; `id` breaks ties. Paging is by
//! keyset: `next_cursor` is the position after the page's last item (see
//! [`ConversationCursor`]), `null` on the last page. An empty `agent_id`
//! counts as absent; an empty `limit` is not a number (400 `bad_query`), an
//! empty `cursor` not a cursor (422 `invalid_cursor`).

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::chat::{Conversation, Page};
use confab_protocol::error::ErrorBody;
use confab_protocol::ids::AgentId;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::domain::{ConversationCursor, PageLimit};
use crate::routes::CallerId;
use crate::store::conversations;

/// A sidebar's first screen and then some.
const DEFAULT_LIMIT: i64 = 20;
/// Bounds the work and the response of one request.
const MAX_LIMIT: i64 = 100;

/// `limit` is a number, or the query cannot be read (400 `bad_query`, as
/// every other `limit` of the service); its range and the cursor's form are
/// checked here, each answering 422 with its own code.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only the conversations with this agent.
    pub agent_id: Option<String>,
    /// Conversations in the page, 1 to 100 (20 when absent).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page: opaque to clients, but any
    /// string of this form is a position to page on from.
    #[param(pattern = r"^[0-9]{1,19}\.[A-Za-z0-9_-]{1,100}$")]
    pub cursor: Option<String>,
}

/// The caller's conversations, most recently updated first.
///
/// Without their trees; `next_cursor` pages on, `null` on the last page.
#[utoipa::path(
    get,
    path = "/chat/conversations",
    tag = "conversations",
    operation_id = "conversations_list",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of conversations.", body = Page<Conversation>),
        (status = 400, description = "`bad_query`: the query cannot be read (`limit` is not a number, or a parameter is given twice).", body = ErrorBody),
        (status = 422, description = "`invalid_limit`: not from 1 to 100; `invalid_cursor`: `cursor` is not of the documented form.", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let limit = PageLimit::parse(query.limit, DEFAULT_LIMIT, MAX_LIMIT)?.get();
    let after = query
        .cursor
        .as_deref()
        .map(ConversationCursor::parse)
        .transpose()?;
    let agent_id = query
        .agent_id
        .as_deref()
        .filter(|a| !a.is_empty())
        .map(AgentId::from);
    // One more than asked tells whether another page follows, so the last
    // page says so itself instead of leaving the client an empty page.
    let mut rows = conversations::list(
        &state.db,
        &caller.user(),
        agent_id.as_ref(),
        after.as_ref(),
        limit + 1,
    )
    .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = rows
        .last()
        .filter(|_| more)
        .map(|last| ConversationCursor::after(last.updated_at, last.id.as_str()))
        .transpose()?
        .map(|cursor| cursor.encode());
    Ok(HttpResponse::Ok().json(Page {
        items: rows.iter().map(|row| row.to_api(false)).collect(),
        next_cursor,
    }))
}
