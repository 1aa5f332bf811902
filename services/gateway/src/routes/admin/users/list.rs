//! `GET /api/v1/admin/users?q=&cursor=&limit=`: users whose name contains
//! `q` (case-insensitive), oldest first, `limit` (default 50, at most 200)
//! at a time: `{"items":[…], "next_cursor"}`; `next_cursor` continues the
//! list and is null on its last page.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use serde::Deserialize;
use serde_json::json;

use super::UserView;
use crate::GatewayState;
use crate::auth::authenticate_admin;
use crate::domain::{Cursor, PageSize};
use crate::error::GatewayError;
use crate::store::users;

/// The longest search: longer than any username.
const QUERY_CHARS: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    authenticate_admin(&req, &state.keys, &state.browser).await?;
    let query = query.into_inner();
    let q = query
        .q
        .map(|q| q.trim().to_lowercase())
        .filter(|q| !q.is_empty());
    if q.as_ref().is_some_and(|q| q.chars().count() > QUERY_CHARS) {
        return Err(GatewayError::InvalidQuery("q: at most 64 characters").into());
    }
    let cursor = Cursor::parse(query.cursor.as_deref(), "usr")?;
    let limit = PageSize::parse(query.limit, 50, 200)?;
    let rows = users::search(&state.db, q.as_deref(), cursor.as_deref(), limit.get()).await?;
    let next_cursor = limit.next_cursor(&rows, |row| &row.id);
    let items: Vec<UserView> = rows.into_iter().map(UserView::from).collect();
    Ok(HttpResponse::Ok().json(json!({"items": items, "next_cursor": next_cursor})))
}
