//! `POST /chat/conversations` `{title?, agent_id?}`

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::AuthedJson;
use confab_protocol::chat::CreateConversation;

use crate::AppState;
use crate::store::conversations;

/// Longest title kept, in characters.
const MAX_TITLE_CHARS: usize = 200;

pub async fn create(
    state: web::Data<AppState>,
    request: AuthedJson<CreateConversation>,
) -> Result<HttpResponse, ApiError> {
    let AuthedJson { caller, body } = request;
    let title = body
        .title
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "New conversation".to_owned());
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(ApiError::unprocessable(
            "title_too_long",
            format!("a title has at most {MAX_TITLE_CHARS} characters"),
        ));
    }
    let agent_id = body
        .agent_id
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| state.chat.default_agent.clone());
    if !state.agents.contains(&agent_id) {
        return Err(ApiError::unprocessable(
            "unknown_agent",
            format!("no agent '{agent_id}' is registered"),
        ));
    }
    let row = conversations::new_row(&caller.user_id, title, agent_id);
    conversations::create(&state.db, &row).await?;
    Ok(HttpResponse::Created().json(row.to_api(true)))
}
