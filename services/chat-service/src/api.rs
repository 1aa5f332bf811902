//! chat-service's routes, registered with actix and listed in one place
//! ([`confab_kit::api::Routes`]), so that the coverage test can hold them
//! against the OpenAPI document ([`crate::openapi`]).

use confab_kit::api::Routes;
use utoipa::openapi::OpenApi;

use crate::routes::{agents, conversations, internal, openai, seeds, unified, ws};

/// Every route of chat-service besides kit's own (`/health`, `/ready`,
/// `/metrics`), and `GET /openapi.json` serving `doc`.
pub fn api(r: &mut Routes<'_>, doc: &OpenApi) {
    r.get("/chat/agents", agents::list::list)
        .delete("/internal/users/{id}", internal::delete_user::delete_user)
        .get("/ws/chat", ws::chat)
        .post("/chat/unified", unified::unified)
        .post("/chat/completions", openai::completions::completions)
        .get("/chat/models", openai::models::list)
        .scope("/chat/conversations", conversations::routes)
        // The seeds' own forms (issue 17): 000's sessions, 003's agent chat.
        .scope("/chat/sessions", seeds::sessions::routes)
        .scope("/chat/agent/chat", seeds::agent_chat::routes)
        .openapi(doc);
}
