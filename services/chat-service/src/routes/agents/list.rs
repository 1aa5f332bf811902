//! `GET /chat/agents`: the registered agents with their cards. An agent
//! whose card cannot be fetched is listed with `card: null` and the reason.

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::chat::Page;
use serde_json::{Value, json};

use crate::AppState;

pub async fn list(state: web::Data<AppState>, _caller: Caller) -> Result<HttpResponse, ApiError> {
    let mut items: Vec<Value> = Vec::new();
    for (id, entry) in state.agents.ids() {
        let item = match state.agents.card(id).await {
            Ok(card) => json!({"id": id, "url": entry.url, "card": card}),
            Err(reason) => {
                json!({"id": id, "url": entry.url, "card": null, "error": reason.to_string()})
            }
        };
        items.push(item);
    }
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: None,
    }))
}
