//! `GET /chat/conversations/{id}`: one conversation with its tree.

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::ids::ConversationId;

use crate::AppState;
use crate::error::ChatError;
use crate::routes::CallerId;
use crate::store::conversations;

pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<ConversationId>,
) -> Result<HttpResponse, ApiError> {
    let row = conversations::get(&state.db, &caller.user(), &path.into_inner())
        .await?
        .ok_or(ChatError::ConversationNotFound)?;
    Ok(HttpResponse::Ok().json(row.to_api(true)))
}
