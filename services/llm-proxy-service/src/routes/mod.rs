//! HTTP routes of llm-proxy-service.

pub mod budgets;
pub mod calls;
pub mod completions;
pub mod models;
pub mod traces;
pub mod usage;
pub mod users;

use actix_web::web;
use confab_kit::api::Routes;
use utoipa::openapi::OpenApi;

use crate::trace;

/// Every route of the service, and `GET /openapi.json` serving `doc`
/// (`crate::openapi::document`): registered and listed in one place, so
/// that the coverage test holds the one against the other.
pub fn api(r: &mut Routes<'_>, doc: &OpenApi) {
    r.post("/v1/chat/completions", completions::create)
        .get("/v1/models", models::list)
        .get("/v1/models/{model:.+}", models::get)
        .get("/llm-calls", calls::list)
        .get("/llm-calls/{id}", calls::get)
        .get("/traces", traces::list)
        .get("/usage", usage::report)
        .get("/budget-status", budgets::status::check)
        .scope("/budgets", |r| {
            r.app_data(web::PayloadConfig::new(budgets::BODY_LIMIT))
                .put("/{subject}/{id}", budgets::put::store)
                .get("/{subject}/{id}", budgets::get::read)
                .delete("/{subject}/{id}", budgets::delete::reset);
        })
        .delete("/internal/users/{id}", users::delete)
        .get("/ws/trace/{agent_id}", trace::ws::subscribe)
        .openapi(doc);
}
