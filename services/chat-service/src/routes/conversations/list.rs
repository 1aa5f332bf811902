//! `GET /chat/conversations?agent_id=&limit=&cursor=`: the caller's
//! conversations, most recently updated first.
//!
//! A new message or a rename bumps `updated_at`, so the conversation in use
//! moves to the top, as a chat sidebar expects; `id` breaks ties. Paging is by
//! keyset: `next_cursor` is the position after the page's last item (see
//! [`ConversationCursor`]), `null` on the last page. An empty parameter counts
//! as absent.

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

/// Taken as text and parsed here, so that every bad value answers 422 with
/// its own error code.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only the conversations with this agent.
    pub agent_id: Option<String>,
    /// Conversations in the page, 1 to 100 (20 when absent).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
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
        (status = 400, description = "`bad_query`: the query cannot be read (a parameter given twice, say).", body = ErrorBody),
        (status = 422, description = "`invalid_limit`; `invalid_cursor`: not a cursor this service handed out.", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let limit = PageLimit::parse(query.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?.get();
    let after = query
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
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
    let next_cursor = rows.last().filter(|_| more).map(|last| {
        ConversationCursor {
            updated_at: last.updated_at,
            id: last.id.to_string(),
        }
        .encode()
    });
    Ok(HttpResponse::Ok().json(Page {
        items: rows.iter().map(|row| row.to_api(false)).collect(),
        next_cursor,
    }))
}
