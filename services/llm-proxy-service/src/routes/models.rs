//! `GET /v1/models` and `GET /v1/models/{model}`: what a caller may ask for.

use actix_web::{HttpRequest, HttpResponse, web};
use confab_kit::ApiError;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::identify;
use crate::error::ProxyError;

fn model(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": "confab"})
}

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    identify(&req, &state.service_auth, &state.agent_keys).await?;
    let data: Vec<Value> = state
        .providers
        .model_names()
        .iter()
        .map(|id| model(id))
        .collect();
    Ok(HttpResponse::Ok().json(json!({"object": "list", "data": data})))
}

pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    identify(&req, &state.service_auth, &state.agent_keys).await?;
    let id = path.into_inner();
    if state.providers.resolve(&id).is_none() {
        return Err(ProxyError::UnknownModel(id).into());
    }
    Ok(HttpResponse::Ok().json(model(&id)))
}
