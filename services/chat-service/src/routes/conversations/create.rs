//! `POST /chat/conversations` `{title?, agent_id?}`

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::AuthedJson;
use confab_protocol::chat::{Conversation, CreateConversation};
use confab_protocol::error::ErrorBody;

use crate::AppState;
use crate::a2a::select;
use crate::domain::ConversationTitle;
use crate::routes::CallerId;
use crate::store::conversations;

/// Creates a conversation.
///
/// A missing or blank `title` is "New conversation"; the agent is
/// `agent_id`, else `chat.default_agent`.
#[utoipa::path(
    post,
    path = "/chat/conversations",
    tag = "conversations",
    operation_id = "conversations_create",
    request_body = CreateConversation,
    responses(
        (status = 201, description = "The conversation, with its (empty) tree.", body = Conversation),
        (status = 404, description = "`unknown_agent`: `agent_id` names no registered agent.", body = ErrorBody),
        (status = 422, description = "`title_too_long`; `invalid_body`: the JSON does not have the documented shape.", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn create(
    state: web::Data<AppState>,
    request: AuthedJson<CreateConversation>,
) -> Result<HttpResponse, ApiError> {
    let AuthedJson { caller, body } = request;
    // A missing or blank title means "untitled" here; renaming to a blank
    // title is refused.
    let title = match body.title.as_deref().map(str::trim) {
        None | Some("") => ConversationTitle::untitled(),
        Some(title) => ConversationTitle::parse(title)?,
    };
    let agent_id = select::choose(
        &state.agents,
        body.agent_id,
        None,
        &state.chat.default_agent,
    )
    .await?;
    let row = conversations::new_row(&caller.user(), title, agent_id);
    conversations::create(&state.db, &row).await?;
    Ok(HttpResponse::Created().json(row.to_api(true)))
}
