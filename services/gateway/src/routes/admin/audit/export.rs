//! `GET /api/v1/admin/audit/export?from=&to=&actor=&action=&order=`: every
//! row the filter matches as JSON lines (`application/x-ndjson`, one row
//! per line, oldest first unless `order=desc`), streamed page by page so a long trail is never
//! held in memory. A database failure mid-way ends the stream early (the
//! client sees a truncated download, logged here).

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_protocol::error::ErrorBody;
use futures_util::stream;

use super::{AuditQuery, AuditView};
use crate::GatewayState;
use crate::auth::authenticate_admin;
use crate::error::GatewayError;
use crate::store::audit::{self, AuditFilter};

/// Rows read per query while exporting.
const PAGE: i64 = 500;

/// Every row the filter matches, streamed as JSON lines.
#[utoipa::path(
    get,
    path = "/api/v1/admin/audit/export",
    operation_id = "admin_export_audit",
    tag = "admin",
    params(AuditQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "One `AuditView` JSON object per line, oldest first unless `order=desc`, as the attachment `confab-audit.jsonl` (a database failure mid-way ends it early).", content_type = "application/x-ndjson", body = String),
        (status = 400, description = "`bad_query`: a `limit` (the export has every row), or a filter as the page's `bad_query`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an administrator; `api_key_not_allowed`: an API key.", body = ErrorBody),
    )
)]
pub async fn export(
    req: HttpRequest,
    state: web::Data<GatewayState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    authenticate_admin(&req, &state.keys, &state.browser).await?;
    if query.limit.is_some() {
        return Err(GatewayError::InvalidQuery("limit: the export has every row").into());
    }
    let filter = query.filter()?;
    let pages = stream::unfold(Some(filter), move |filter: Option<AuditFilter>| {
        let state = state.clone();
        async move {
            let mut filter = filter?;
            match audit::page(&state.db, &filter, PAGE).await {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let full = i64::try_from(rows.len()).is_ok_and(|n| n == PAGE);
                    filter.after_id = rows.last().map(|row| row.id.clone());
                    let mut lines = Vec::new();
                    for row in rows {
                        if serde_json::to_writer(&mut lines, &AuditView::from(row)).is_ok() {
                            lines.push(b'\n');
                        }
                    }
                    let next = full.then_some(filter);
                    Some((Ok::<_, actix_web::Error>(Bytes::from(lines)), next))
                }
                Err(error) => {
                    tracing::error!(%error, "the audit export stopped: reading the trail failed");
                    None
                }
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header(("cache-control", "no-store"))
        .insert_header((
            "content-disposition",
            "attachment; filename=\"confab-audit.jsonl\"",
        ))
        .streaming(pages))
}
