//! `GET /v1/models`

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::AppState;

pub async fn list(state: web::Data<AppState>) -> HttpResponse {
    let data: Vec<_> = state
        .providers
        .model_names()
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "confab"}))
        .collect();
    HttpResponse::Ok().json(json!({"object": "list", "data": data}))
}
