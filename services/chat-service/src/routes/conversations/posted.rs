//! What `POST …/messages` and `POST …/messages/stream` share: the posted
//! message checked and its turn begun in the conversation of the path.

use actix_web::{HttpRequest, web};
use confab_kit::ApiError;
use confab_kit::auth::{AuthedJson, Caller};
use confab_protocol::chat::SendMessage;
use confab_protocol::ids::ConversationId;

use crate::AppState;
use crate::a2a::client::Trace;
use crate::domain::MessageText;
use crate::routes::CallerId;
use crate::turns::begin::{Started, begin};

pub async fn begin_posted(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    conversation_id: &ConversationId,
    request: AuthedJson<SendMessage>,
) -> Result<(Caller, Started), ApiError> {
    let AuthedJson { caller, body } = request;
    let text = MessageText::parse(body.message, state.chat.max_message_chars)?;
    let permit = state
        .turn_budget
        .admit(&caller.user(), caller.api_key_id.as_deref())
        .await?;
    let started = begin(
        state.turn_services(),
        permit,
        conversation_id,
        text,
        Trace::from_request(req),
    )
    .await?;
    Ok((caller, started))
}
