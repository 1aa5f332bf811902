//! `POST /chat/sessions` (or `/chat/sessions/`): a new conversation, as
//! `POST /chat/conversations` makes it, except that the body may be left
//! out altogether: seed 000's playground creates a session without saying
//! anything about it. A body, when there is one, is `{title?, agent_id?}`
//! and is checked as the native one is.

use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use confab_kit::auth::{AuthedJson, Caller};
use confab_protocol::chat::{Conversation, CreateConversation};
use confab_protocol::error::ErrorBody;

use crate::AppState;
use crate::routes::conversations::create;

/// Creates a session (a conversation), with or without a body.
///
/// As `POST /chat/conversations`, except that the body may be left out.
#[utoipa::path(
    post,
    path = "/chat/sessions",
    tag = "seeds",
    operation_id = "sessions_create",
    // A reference, not the type: the body is optional, but not `null`.
    request_body(content = ref("#/components/schemas/CreateConversation"), description = "`{title?, agent_id?}`, or no body at all."),
    responses(
        (status = 201, description = "The conversation, with its (empty) tree.", body = Conversation),
        (status = 404, description = "`unknown_agent`: `agent_id` names no registered agent.", body = ErrorBody),
        (status = 422, description = "`title_too_long`; `invalid_body`: the JSON does not have the documented shape.", body = ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, actix_web::Error> {
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        AuthedJson {
            caller: Caller::from_request_or_token(&req, None).await?,
            body: CreateConversation::default(),
        }
    } else {
        let mut payload = actix_web::dev::Payload::from(body);
        AuthedJson::<CreateConversation>::from_request(&req, &mut payload).await?
    };
    Ok(create::create(state, request).await?)
}
