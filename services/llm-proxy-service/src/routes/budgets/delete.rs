//! `DELETE /budgets/{subject}/{id}?period=day|month` (service token,
//! admin): the stored budget goes, and the default is in force again.
//! Without `period`, both periods'. 204, also when none was stored.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use serde::Deserialize;

use crate::AppState;
use crate::auth::service_admin;
use crate::budget::{parse_period, parse_subject, parse_subject_id, subject_str};
use crate::store::budgets;

#[derive(Debug, Deserialize)]
pub struct DeleteQuery {
    period: Option<String>,
}

pub async fn reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    service_admin(&req, &state.service_auth, "change budgets").await?;
    let (subject, id) = path.into_inner();
    let subject = parse_subject(&subject)?;
    let id = parse_subject_id(&id)?;
    let period = query.period.as_deref().map(parse_period).transpose()?;
    budgets::delete(
        &state.db,
        subject_str(subject),
        id,
        period.map(|p| p.as_str()),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
