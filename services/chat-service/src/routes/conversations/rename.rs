//! `PATCH /chat/conversations/{id}` `{"title"}`: renames; answers the
//! conversation (with its tree) as it now is. The title follows the rules of
//! create, except that a blank one is refused rather than defaulted.

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::AuthedJson;
use confab_protocol::chat::RenameConversation;
use confab_protocol::ids::ConversationId;

use crate::AppState;
use crate::domain::ConversationTitle;
use crate::error::ChatError;
use crate::routes::CallerId;
use crate::store::conversations;

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
