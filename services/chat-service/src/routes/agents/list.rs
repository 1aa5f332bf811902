//! `GET /chat/agents`: the registered agents with their cards. An agent
//! whose card cannot be fetched is listed with `card: null` and the reason.

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::a2a::AgentCard;
use confab_protocol::chat::Page;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

/// A registered agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentItem {
    /// The id conversations name it by (`agent_id`).
    pub id: String,
    /// Its A2A endpoint.
    pub url: String,
    /// Its agent card; `null` when it cannot be fetched.
    pub card: Option<AgentCard>,
    /// Why the card cannot be fetched; absent when it can.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The registered agents, with their cards.
#[utoipa::path(
    get,
    path = "/chat/agents",
    tag = "agents",
    operation_id = "agents_list",
    responses(
        (status = 200, description = "Every registered agent, in one page (`next_cursor` is `null`).", body = Page<AgentItem>)
    ),
    security(("bearer" = []))
)]
pub async fn list(state: web::Data<AppState>, _caller: Caller) -> Result<HttpResponse, ApiError> {
    let mut items = Vec::new();
    for (id, entry) in state.agents.ids() {
        let (card, error) = match state.agents.card(id).await {
            Ok(card) => (Some(card), None),
            Err(reason) => (None, Some(reason.to_string())),
        };
        items.push(AgentItem {
            id: id.clone(),
            url: entry.url.clone(),
            card,
            error,
        });
    }
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: None,
    }))
}
