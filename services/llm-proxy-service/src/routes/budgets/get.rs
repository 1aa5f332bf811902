//! `GET /budgets/{subject}/{id}` (service token): for the day and the
//! month, the limits in force (stored or default, and which), what was
//! used in the current period and when it resets.
//!
//! An admin reads any budget. A user reads their own (`user/{their id}`)
//! and their API keys' (`api_key/{id}`, counting their own calls only);
//! another user's answers 404, so existence does not leak.
//!
//! ```json
//! {"subject":"user","subject_id":"usr-…","currency":"USD",
//!  "day":{"tokens":10000000,"cost":null,"source":"default",
//!         "used":{"tokens":1234,"cost":0.0012},"resets_at":"2026-12-06T00:00:00Z"},
//!  "month":{…}}
//! ```

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use confab_kit::ApiError;
use confab_protocol::budget::BudgetSubject;
use confab_protocol::error::ErrorBody;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::service_caller;
use crate::budget::{
    Effective, parse_subject, parse_subject_id, period_end, rfc3339, subject_str, used_in,
};
use crate::error::ProxyError;
use crate::pricing::units;

/// A user's or API key's budgets as `GET /budgets/{subject}/{id}` shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetStatus {
    /// `user` or `api_key`.
    pub subject: String,
    pub subject_id: String,
    /// The currency of every cost (`[pricing] currency`).
    pub currency: String,
    /// The UTC calendar day's.
    pub day: PeriodBudget,
    /// The UTC calendar month's.
    pub month: PeriodBudget,
}

/// One period's limits in force, and what was used of them.
#[derive(Debug, Serialize, ToSchema)]
pub struct PeriodBudget {
    /// Tokens (input and output) allowed; null: no token limit.
    pub tokens: Option<i64>,
    /// Cost allowed, in `currency`; null: no cost limit.
    pub cost: Option<f64>,
    /// `stored` (set with PUT) or `default` (configuration's).
    pub source: String,
    pub used: UsedSoFar,
    /// When the period ends and the use counts from zero (RFC 3339, UTC).
    pub resets_at: String,
}

/// What was used in the current period.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsedSoFar {
    pub tokens: i64,
    /// In `currency`.
    pub cost: f64,
}

/// A user's or API key's budgets for the day and the month: the limits in
/// force (stored or default), what was used and when each resets. An admin
/// reads any; a user their own and their API keys' (their own calls only).
#[utoipa::path(
    get,
    path = "/budgets/{subject}/{id}",
    tag = "budgets",
    params(
        ("subject" = confab_protocol::budget::BudgetSubject, Path, description = "`user` or `api_key`."),
        ("id" = String, Path, description = "The user's or API key's id.")
    ),
    security(("service_token" = [])),
    responses(
        (status = 200, description = "The budgets.", body = BudgetStatus),
        (status = 400, description = "`invalid_subject`, `invalid_id`: the path cannot be read.", body = ErrorBody),
        (status = 404, description = "`not_found`: another user's budget, to a user who is not an admin.", body = ErrorBody)
    )
)]
pub async fn read(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let caller = service_caller(&req, &state.service_auth).await?;
    let (subject, id) = path.into_inner();
    let subject = parse_subject(&subject)?;
    let id = parse_subject_id(&id)?;
    // Whose calls count: everyone's for an admin; a user's own otherwise.
    let owner = (!caller.is_admin()).then_some(caller.user_id.as_str());
    if let (BudgetSubject::User, Some(owner)) = (subject, owner)
        && owner != id
    {
        return Err(ProxyError::BudgetNotFound.into());
    }
    let ([day, month], rows) = state.budgets.effective(&state.db, subject, id).await?;
    if let Some(owner) = owner
        && rows.iter().any(|row| row.user_id != owner)
    {
        return Err(ProxyError::BudgetNotFound.into());
    }
    let now = Utc::now();
    let period = async |budget: Effective| -> Result<PeriodBudget, ProxyError> {
        let used = used_in(&state.db, subject, id, owner, budget.period, now).await?;
        Ok(PeriodBudget {
            tokens: budget.limits.tokens,
            cost: budget.limits.cost_nanos.map(units),
            source: budget.source.as_str().to_owned(),
            used: UsedSoFar {
                tokens: used.tokens,
                cost: units(used.cost_nanos),
            },
            resets_at: rfc3339(period_end(budget.period, now)),
        })
    };
    Ok(HttpResponse::Ok().json(BudgetStatus {
        subject: subject_str(subject).to_owned(),
        subject_id: id.to_owned(),
        currency: state.pricing.currency().to_owned(),
        day: period(day).await?,
        month: period(month).await?,
    }))
}
