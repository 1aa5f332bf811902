//! `POST /chat/conversations/{id}/cancel`: stops the turn in flight.
//!
//! Answers 202 at once: the turn cancels the agent's task and ends with its
//! message `canceled`, which its stream (`done`) reports. 404 for a
//! conversation that is not the caller's; 409 when no turn is in flight.

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::ids::ConversationId;
use serde_json::json;

use crate::AppState;
use crate::error::ChatError;
use crate::routes::CallerId;
use crate::store::conversations;

pub async fn cancel(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<ConversationId>,
) -> Result<HttpResponse, ApiError> {
    let conversation_id = path.into_inner();
    conversations::owned(&state.db, &caller.user(), &conversation_id).await?;
    if !state
        .in_flight
        .cancel(&caller.user(), &conversation_id)
        .await
    {
        return Err(ChatError::NoTurnInFlight.into());
    }
    Ok(HttpResponse::Accepted().json(json!({
        "conversation_id": conversation_id,
        "status": "canceling",
    })))
}
