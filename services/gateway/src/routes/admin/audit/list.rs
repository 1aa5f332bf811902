//! `GET /api/v1/admin/audit?from=&to=&actor=&action=&order=&cursor=&limit=`:
//! a page of the trail, oldest first unless `order=desc` (`limit` default
//! 100, at most 1000):
//! `{"items":[{id, at, actor_id, actor_name, action, target_id, ip,
//! detail}], "next_cursor"}`.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use serde_json::json;

use super::{AuditQuery, AuditView};
use crate::GatewayState;
use crate::auth::authenticate_admin;
use crate::domain::PageSize;
use crate::store::audit;

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
    let items: Vec<AuditView> = rows.into_iter().map(AuditView::from).collect();
    Ok(HttpResponse::Ok().json(json!({"items": items, "next_cursor": next_cursor})))
}
