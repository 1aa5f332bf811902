//! `POST /chat/conversations/{id}/cancel`: stops the turn in flight.
//!
//! Answers 202 at once: the turn cancels the agent's task and ends with its
//! message `canceled`, which its stream (`done`) reports. 404 for a
//! conversation that is not the caller's; 409 when no turn is in flight.

use actix_web::{HttpResponse, web};
use confab_kit::ApiError;
use confab_kit::auth::Caller;
use confab_protocol::error::ErrorBody;
use confab_protocol::ids::ConversationId;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ChatError;
use crate::routes::CallerId;
use crate::store::conversations;

/// `202`'s body: the turn is being canceled.
#[derive(Debug, Serialize, ToSchema)]
pub struct Canceling {
    pub conversation_id: ConversationId,
    /// Always `canceling`.
    pub status: &'static str,
}

/// Stops the turn in flight.
///
/// Answers at once; the turn's stream reports the end (`done`, `canceled`).
#[utoipa::path(
    post,
    path = "/chat/conversations/{id}/cancel",
    tag = "conversations",
    operation_id = "conversations_cancel",
    params(("id" = String, Path, description = "The conversation's id (`conv-…`).")),
    responses(
        (status = 202, description = "The turn is being canceled.", body = Canceling),
        (status = 404, description = "`not_found`: no such conversation of the caller's.", body = ErrorBody),
        (status = 409, description = "`no_turn_in_flight`: no reply is being written in this conversation.", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
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
    Ok(HttpResponse::Accepted().json(Canceling {
        conversation_id,
        status: "canceling",
    }))
}
