//! `GET /traces?agent_id=&conversation_id=&since=&limit=`: stored trace
//! events in `seq` order; `next_cursor` is the `since` of the next page.

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::chat::Page;
use confab_protocol::error::ErrorBody;
use confab_protocol::trace::TraceEvent;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::routes::calls::{limit, scope};
use crate::store::trace_events::{self, EventFilter};
use crate::trace::hub::from_row;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TraceQuery {
    /// Only this agent's events.
    agent_id: Option<String>,
    /// Only this conversation's events.
    conversation_id: Option<String>,
    /// Events after this `seq` (the `next_cursor` of the previous page); 0 by default.
    since: Option<i64>,
    /// Events per page, 1 to 1000; 100 by default.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Every user's events (admins only).
    #[serde(default)]
    #[param(default = false)]
    all_users: bool,
}

/// The caller's stored trace events (every user's for an admin asking
/// `all_users=true`), in `seq` order.
#[utoipa::path(
    get,
    path = "/traces",
    tag = "history",
    params(TraceQuery),
    security(("bearer" = []), ("service_token" = [])),
    responses(
        (status = 200, description = "A page of events; `next_cursor` is the `since` of the next, null on the last.", body = Page<TraceEvent>),
        (status = 400, description = "`bad_query`: a query parameter of the wrong type.", body = ErrorBody),
        (status = 403, description = "`forbidden`: `all_users=true` from a user who is not an admin.", body = ErrorBody),
        (status = 422, description = "`invalid_limit`: `limit` is not between 1 and 1000.", body = ErrorBody)
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<TraceQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = limit(query.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let rows = trace_events::list(
        &state.db,
        &EventFilter {
            agent_id: query.agent_id.clone(),
            user_id: scope(&caller, query.all_users)?,
            conversation_id: query.conversation_id.clone(),
            after_seq: query.since.unwrap_or(0),
            before_seq: None,
            limit,
        },
    )
    .await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.seq.to_string()))
        .flatten();
    Ok(HttpResponse::Ok().json(Page {
        items: rows.into_iter().map(from_row).collect(),
        next_cursor,
    }))
}
