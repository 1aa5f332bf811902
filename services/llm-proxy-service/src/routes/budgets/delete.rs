//! `DELETE /budgets/{subject}/{id}?period=day|month` (service token,
//! admin): the stored budget goes, and the default is in force again.
//! Without `period`, both periods'. 204, also when none was stored.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use confab_protocol::error::ErrorBody;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::service_admin;
use crate::budget::{parse_period, parse_subject, parse_subject_id, subject_str};
use crate::store::budgets;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// `day` or `month`; both when absent.
    period: Option<String>,
}

/// Removes a stored budget (for an admin, through the gateway): the
/// default is in force again.
#[utoipa::path(
    delete,
    path = "/budgets/{subject}/{id}",
    tag = "budgets",
    params(
        ("subject" = confab_protocol::budget::BudgetSubject, Path, description = "`user` or `api_key`."),
        ("id" = String, Path, description = "The user's or API key's id."),
        DeleteQuery
    ),
    security(("service_token" = [])),
    responses(
        (status = 204, description = "Removed, or none was stored."),
        (status = 400, description = "`invalid_subject`, `invalid_id`, `invalid_period`, `bad_query`: the path or query cannot be read.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the user the gateway names (`X-User-Id`, `X-User-Role`) is not an admin.", body = ErrorBody)
    )
)]
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
