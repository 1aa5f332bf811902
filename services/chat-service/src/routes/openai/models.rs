//! `GET /chat/models`: every registered agent as an OpenAI model.

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use serde_json::{Value, json};

use crate::AppState;

/// An agent has no creation time; 0 keeps the field an integer, as OpenAI
/// clients require.
const CREATED: i64 = 0;

pub async fn list(state: web::Data<AppState>, _caller: Caller) -> Result<HttpResponse, ApiError> {
    let data: Vec<Value> = state
        .agents
        .ids()
        .map(|(id, _)| json!({"id": id, "object": "model", "created": CREATED, "owned_by": "confab"}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({"object": "list", "data": data})))
}
