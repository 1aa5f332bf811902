//! `GET /api/v1/admin/audit?from=&to=&actor=&action=&order=&cursor=&limit=`:
//! a page of the trail, oldest first unless `order=desc` (`limit` default
//! 100, at most 1000):
//! `{"items":[{id, at, actor_id, actor_name, action, target_id, ip,
//! detail}], "next_cursor"}`.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_protocol::error::ErrorBody;
use serde::Serialize;
use utoipa::ToSchema;

use super::{AuditQuery, AuditView};
use crate::GatewayState;
use crate::auth::authenticate_admin;
use crate::domain::PageSize;
use crate::store::audit;

/// A page of the trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditView>,
    /// Continues the trail; null on its last page.
    pub next_cursor: Option<String>,
}

/// A page of the audit trail, oldest first unless `order=desc`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/audit",
    operation_id = "admin_list_audit",
    tag = "admin",
    params(AuditQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "A page of the trail.", body = AuditPage),
        (status = 400, description = "`bad_query`: a `from`/`to` not RFC 3339 or a date, an unknown `action`, an `order` not `asc` or `desc`, a `cursor` not from a page, a `limit` out of range, or an unknown parameter.", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an administrator; `api_key_not_allowed`: an API key.", body = ErrorBody),
    )
)]
pub async fn list(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    authenticate_admin(&req, &state.keys, &state.browser).await?;
    let filter = query.filter()?;
    let limit = PageSize::parse(query.limit, 100, 1000)?;
    let rows = audit::page(&state.db, &filter, limit.get()).await?;
    let next_cursor = limit.next_cursor(&rows, |row| &row.id);
    let items = rows.into_iter().map(AuditView::from).collect();
    Ok(HttpResponse::Ok().json(AuditPage { items, next_cursor }))
}
