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
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::service_caller;
use crate::budget::{parse_subject, parse_subject_id, period_end, rfc3339, subject_str, used_in};
use crate::error::ProxyError;
use crate::pricing::units;

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
    let (effective, rows) = state.budgets.effective(&state.db, subject, id).await?;
    if let Some(owner) = owner
        && rows.iter().any(|row| row.user_id != owner)
    {
        return Err(ProxyError::BudgetNotFound.into());
    }
    let now = Utc::now();
    let mut body = Map::new();
    body.insert("subject".into(), json!(subject_str(subject)));
    body.insert("subject_id".into(), json!(id));
    body.insert("currency".into(), json!(state.pricing.currency()));
    for budget in effective {
        let used = used_in(&state.db, subject, id, owner, budget.period, now).await?;
        body.insert(
            budget.period.as_str().into(),
            json!({
                "tokens": budget.limits.tokens,
                "cost": budget.limits.cost_nanos.map(units),
                "source": budget.source.as_str(),
                "used": {"tokens": used.tokens, "cost": units(used.cost_nanos)},
                "resets_at": rfc3339(period_end(budget.period, now)),
            }),
        );
    }
    Ok(HttpResponse::Ok().json(Value::Object(body)))
}
