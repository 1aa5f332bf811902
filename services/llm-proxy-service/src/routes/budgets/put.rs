//! `PUT /budgets/{subject}/{id}` (service token, admin): stores a budget
//! for one period of a user or API key, in place of the default.
//!
//! Body: `{"period":"day"|"month","tokens":n|null,"cost":x|null,"user_id":"usr-…"}`;
//! `user_id` is the owner (for a user's own budget, the user). Absent or
//! null limits are no limit of that kind. Answers the stored budget.

use std::str::FromStr;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use confab_kit::ApiError;
use confab_protocol::budget::{BudgetPeriod, BudgetSubject};
use confab_protocol::error::ErrorBody;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::service_admin;
use crate::budget::{
    check_tokens, cost_to_nanos, parse_subject, parse_subject_id, rfc3339, subject_str,
};
use crate::error::ProxyError;
use crate::pricing::units;
use crate::store::budgets::{self, BudgetRow};

/// 16 KiB: a budget is a few dozen bytes; anything near this is not one.
pub const BODY_LIMIT: usize = 16 * 1024;

/// A budget to store; no other field is accepted.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetBody {
    period: BudgetPeriod,
    /// Tokens (input and output) allowed in the period, 0 to 10^15; absent
    /// or null: no token limit.
    #[serde(default)]
    tokens: Option<i64>,
    /// Cost allowed in the period, in `[pricing] currency`, 0 to 10^9;
    /// absent or null: no cost limit.
    #[serde(default)]
    cost: Option<f64>,
    /// The owner: the user, for a user's own budget; the key's owner for an
    /// API key's.
    user_id: String,
}

/// A stored budget as the endpoints show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoredBudget {
    pub subject: String,
    pub subject_id: String,
    pub user_id: String,
    pub period: String,
    pub tokens: Option<i64>,
    pub cost: Option<f64>,
    pub currency: String,
    pub updated_at: String,
}

impl StoredBudget {
    pub fn of(row: &BudgetRow, currency: &str) -> Self {
        Self {
            subject: row.subject.clone(),
            subject_id: row.subject_id.clone(),
            user_id: row.user_id.clone(),
            period: row.period.clone(),
            tokens: row.tokens,
            cost: row.cost_nanos.map(units),
            currency: currency.to_owned(),
            updated_at: rfc3339(DateTime::<Utc>::from_naive_utc_and_offset(
                row.updated_at,
                Utc,
            )),
        }
    }
}

/// Stores a budget for one period of a user or API key (for an admin,
/// through the gateway), in place of the default.
#[utoipa::path(
    put,
    path = "/budgets/{subject}/{id}",
    tag = "budgets",
    params(
        ("subject" = confab_protocol::budget::BudgetSubject, Path, description = "`user` or `api_key`."),
        ("id" = String, Path, description = "The user's or API key's id.")
    ),
    request_body(content = BudgetBody, description = "At most 16 KiB."),
    security(("service_token" = [])),
    responses(
        (status = 200, description = "The stored budget.", body = StoredBudget),
        (status = 400, description = "`invalid_subject`, `invalid_id`: the path or `user_id` cannot be read; `malformed_json`: the body is not JSON.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the user the gateway names (`X-User-Id`, `X-User-Role`) is not an admin.", body = ErrorBody),
        (status = 422, description = "`invalid_body`: the body is not a budget (not an object, an unknown field, a limit out of range), or a user's budget names another `user_id`.", body = ErrorBody)
    )
)]
pub async fn store(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    service_admin(&req, &state.service_auth, "set budgets").await?;
    let (subject, id) = path.into_inner();
    let subject = parse_subject(&subject)?;
    let id = parse_subject_id(&id)?;
    let body = parse_body(&body)?;
    let owner = parse_subject_id(&body.user_id)?;
    if subject == BudgetSubject::User && owner != id {
        return Err(ProxyError::InvalidBudget(
            "a user's budget is owned by the user: user_id must equal the id in the path".into(),
        )
        .into());
    }
    let tokens = body
        .tokens
        .map(check_tokens)
        .transpose()
        .map_err(ProxyError::InvalidBudget)?;
    let cost_nanos = body
        .cost
        .map(cost_nanos_of)
        .transpose()
        .map_err(ProxyError::InvalidBudget)?;
    let row = BudgetRow {
        subject: subject_str(subject).to_owned(),
        subject_id: id.to_owned(),
        user_id: owner.to_owned(),
        period: body.period.as_str().to_owned(),
        tokens,
        cost_nanos,
        updated_at: Utc::now().naive_utc(),
    };
    budgets::put(&state.db, &row).await?;
    Ok(HttpResponse::Ok().json(StoredBudget::of(&row, state.pricing.currency())))
}

/// Malformed JSON: 400; JSON that is not a budget: 422.
fn parse_body(bytes: &[u8]) -> Result<BudgetBody, ProxyError> {
    let value: Value = serde_json::from_slice(bytes).map_err(ProxyError::MalformedJson)?;
    if !value.is_object() {
        return Err(ProxyError::BodyNotObject);
    }
    serde_json::from_value(value).map_err(ProxyError::InvalidRequest)
}

/// A cost as JSON gave it (a double), read as the decimal it was written
/// as (`0.1` is 0.1, not the double nearest it).
fn cost_nanos_of(cost: f64) -> Result<i64, String> {
    if !cost.is_finite() {
        return Err("cost must be a finite number".into());
    }
    let decimal = Decimal::from_str(&cost.to_string()).map_err(|_| "cost is out of range")?;
    cost_to_nanos(decimal)
}
