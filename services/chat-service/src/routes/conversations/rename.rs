//! `PATCH /chat/conversations/{id}` `{"title"}`: renames; answers the
//! conversation (with its tree) as it now is. The title follows the rules of
//! create, except that a blank one is refused rather than defaulted.

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::AuthedJson;
use confab_protocol::chat::{Conversation, RenameConversation};
use confab_protocol::error::ErrorBody;
use confab_protocol::ids::ConversationId;

use crate::AppState;
use crate::domain::ConversationTitle;
use crate::error::ChatError;
use crate::routes::CallerId;
use crate::store::conversations;

/// Renames a conversation.
#[utoipa::path(
    patch,
    path = "/chat/conversations/{id}",
    tag = "conversations",
    operation_id = "conversations_rename",
    params(("id" = String, Path, description = "The conversation's id (`conv-…`).")),
    request_body = RenameConversation,
    responses(
        (status = 200, description = "The conversation as it now is, with its tree.", body = Conversation),
        (status = 404, description = "`not_found`: no such conversation of the caller's.", body = ErrorBody),
        (status = 422, description = "`empty_title`; `title_too_long`; `invalid_body`: the JSON does not have the documented shape (a field other than `title`, say).", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn rename(
    state: web::Data<AppState>,
    path: web::Path<ConversationId>,
    request: AuthedJson<RenameConversation>,
) -> Result<HttpResponse, ApiError> {
    let AuthedJson { caller, body } = request;
    let title = ConversationTitle::parse(&body.title)?;
    let row = conversations::rename(&state.db, &caller.user(), &path.into_inner(), &title)
        .await?
        .ok_or(ChatError::ConversationNotFound)?;
    Ok(HttpResponse::Ok().json(row.to_api(true)))
}
