//! `GET /api/v1/admin/users?q=&cursor=&limit=`: users whose name contains
//! `q` (case-insensitive), oldest first, `limit` (default 50, at most 200)
//! at a time: `{"items":[…], "next_cursor"}`; `next_cursor` continues the
//! list and is null on its last page.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_protocol::error::ErrorBody;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::UserView;
use crate::GatewayState;
use crate::auth::authenticate_admin;
use crate::domain::{Cursor, PageSize};
use crate::error::GatewayError;
use crate::store::users;

/// The longest search: longer than any username.
const QUERY_CHARS: usize = 64;

/// `?q=&cursor=&limit=`
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Part of the username, any case (at most 64 characters).
    #[param(max_length = 64)]
    q: Option<String>,
    /// The `next_cursor` of the page before (empty: the first page).
    #[param(pattern = "^(usr-[A-Za-z0-9-]{0,60})?$")]
    cursor: Option<String>,
    /// Users per page: 1 to 200, 50 if absent.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// A page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    /// Continues the list; null on its last page.
    pub next_cursor: Option<String>,
}

/// Users whose name contains `q`, oldest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/admin/users",
    operation_id = "admin_list_users",
    tag = "admin",
    params(ListQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "A page of users.", body = UserPage),
        (status = 400, description = "`bad_query`: a `q` over 64 characters, a `cursor` not from a page, a `limit` out of range, or an unknown parameter.", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an administrator; `api_key_not_allowed`: an API key.", body = ErrorBody),
    )
)]
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
    let items = rows.into_iter().map(UserView::from).collect();
    Ok(HttpResponse::Ok().json(UserPage { items, next_cursor }))
}
