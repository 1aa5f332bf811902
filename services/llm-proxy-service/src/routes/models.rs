//! `GET /v1/models`

use actix_web::HttpResponse;
use serde_json::json;

use crate::providers::builtin;

pub async fn list() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "object": "list",
        "data": [{
            "id": builtin::PROVIDER,
            "object": "model",
            "created": 0,
            "owned_by": "confab",
        }],
    }))
}
