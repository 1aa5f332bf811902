//! `GET /chat/models`: every registered agent as an OpenAI model.

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::openai::{Model, ModelList};

use crate::AppState;

/// An agent has no creation time; 0 keeps the field an integer, as OpenAI
/// clients require.
const CREATED: i64 = 0;

/// Every registered agent as an OpenAI model (`model` of
/// `POST /chat/completions`).
#[utoipa::path(
    get,
    path = "/chat/models",
    tag = "openai",
    operation_id = "models_list",
    responses(
        (status = 200, description = "`{\"object\":\"list\",\"data\"}`: one model per agent, its id the agent's.", body = ModelList)
    ),
    security(("bearer" = []))
)]
pub async fn list(state: web::Data<AppState>, _caller: Caller) -> Result<HttpResponse, ApiError> {
    let data = state
        .agents
        .ids()
        .map(|(id, _)| Model::confab(id.clone(), CREATED))
        .collect();
    Ok(HttpResponse::Ok().json(ModelList::new(data)))
}
