//! `GET /traces?agent_id=&conversation_id=&since=&limit=`: stored trace
//! events in `seq` order; `next_cursor` is the `since` of the next page.

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::chat::Page;
use serde::Deserialize;

use crate::AppState;
use crate::routes::calls::{limit, scope};
use crate::store::trace_events::{self, EventFilter};
use crate::trace::hub::from_row;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

#[derive(Debug, Deserialize)]
pub struct TraceQuery {
    agent_id: Option<String>,
    conversation_id: Option<String>,
    since: Option<i64>,
    limit: Option<i64>,
    #[serde(default)]
    all_users: bool,
}

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
