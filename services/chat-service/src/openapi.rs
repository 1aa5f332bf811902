//! chat-service's OpenAPI document, generated from its handlers'
//! `#[utoipa::path]` annotations and the wire types they (de)serialise.
//!
//! `/chat/sessions…` (seed 000) is served by the conversations' handlers
//! wherever the shapes agree ([`crate::routes::seeds::sessions::routes`]);
//! an annotation describes one path, so those operations are copied here
//! from their `/chat/conversations…` twins ([`SESSIONS_SHARED`]). The
//! coverage test (`tests/api/openapi.rs`) holds the result against the
//! routes served.
//!
//! An SSE response is annotated with the schema of its events' payload
//! (`content_type = "text/event-stream", body = ChatEvent`); the document
//! describes each event as what an SSE parser reads
//! ([`confab_kit::api::describe_event_streams`]).

use utoipa::OpenApi;
use utoipa::openapi::path::{HttpMethod, Operation};

use crate::SERVICE;
use crate::routes::seeds::{agent_chat, sessions};
use crate::routes::{agents, conversations, internal, openai, unified, ws};

#[derive(OpenApi)]
#[openapi(
    paths(
        conversations::create::create,
        conversations::list::list,
        conversations::get::get,
        conversations::rename::rename,
        conversations::delete::delete,
        conversations::history::history,
        conversations::messages::list,
        conversations::send::send,
        conversations::stream::stream,
        conversations::resume::resume,
        conversations::cancel::cancel,
        agents::list::list,
        unified::unified,
        openai::completions::completions,
        openai::models::list,
        ws::connect::chat,
        internal::delete_user::delete_user,
        sessions::create::create,
        sessions::stream::stream,
        sessions::follow::follow,
        agent_chat::chat::chat,
        agent_chat::stream::stream,
        agent_chat::history::history
    ),
    tags(
        (name = "conversations", description = "Conversations, their messages, and turns (DESIGN §7)."),
        (name = "chat", description = "One turn in one request (`/chat/unified`), and chat over a WebSocket (`/ws/chat`)."),
        (name = "openai", description = "The OpenAI chat-completions API over chat turns: `model` is an agent id."),
        (name = "agents", description = "The registered agents."),
        (name = "seeds", description = "The seeds' own forms of the chat API (issue 17): seed 000's `/chat/sessions…`, seed 003's `/chat/agent/chat…`."),
        (name = "internal", description = "What the other services ask of chat-service, with the service token.")
    )
)]
struct ApiDoc;

/// The operations `/chat/sessions{rest}` serves with the handler of
/// `/chat/conversations{rest}`: every route of
/// [`sessions::routes`] but `POST` (create), `POST …/messages/stream` and
/// `GET …/messages/stream`, which are the seed's own and annotated as such.
const SESSIONS_SHARED: [(&str, HttpMethod); 8] = [
    ("", HttpMethod::Get),
    ("/{id}", HttpMethod::Get),
    ("/{id}", HttpMethod::Patch),
    ("/{id}", HttpMethod::Delete),
    ("/{id}/history", HttpMethod::Get),
    ("/{id}/messages", HttpMethod::Get),
    ("/{id}/messages", HttpMethod::Post),
    ("/{id}/cancel", HttpMethod::Post),
];

/// The document `GET /openapi.json` serves.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut own = ApiDoc::openapi();
    add_sessions_shared(&mut own);
    completions_need_a_user_message(&mut own);
    confab_kit::api::describe_event_streams(&mut own, &DONE_TERMINATED);
    confab_kit::api::document(
        SERVICE,
        "Conversations, messages and server-owned chat turns that talk to agents over A2A.",
        own,
    )
}

/// `POST /chat/completions` refuses `messages` without a `user` message
/// (422 `no_user_message`) and a `user` message without text (422
/// `empty_message`): its body is `ChatCompletionRequest` whose `messages`
/// contain one whose `role` is `user`, and each `user` message has text (a
/// string `content` with a non-space, or a `content` array with a part whose
/// `text` has one: what `ChatMessage::text` reads). Said here, not on the
/// type, which llm-proxy-service takes without those rules. utoipa has no
/// `contains` or `if`; a schema's extensions are written as its own keys.
fn completions_need_a_user_message(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::extensions::Extensions;
    use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Schema, SchemaType};

    let Some(RefOr::T(body)) = doc
        .paths
        .paths
        .get_mut("/chat/completions")
        .and_then(|item| item.post.as_mut())
        .and_then(|operation| operation.request_body.as_mut())
    else {
        return;
    };
    for content in body.content.values_mut() {
        let RefOr::T(content) = content else { continue };
        let Some(request) = content.schema.take() else {
            continue;
        };
        let user = serde_json::json!({
            "type": "object",
            "properties": {"role": {"const": "user"}},
            "required": ["role"]
        });
        let text = serde_json::json!({"type": "string", "pattern": r"\S"});
        let mut rules = Extensions::default();
        rules.insert("contains".to_owned(), user.clone());
        rules.insert(
            "items".to_owned(),
            serde_json::json!({
                "if": user,
                "then": {
                    "properties": {"content": {"anyOf": [
                        text,
                        {"type": "array", "contains": {
                            "type": "object",
                            "properties": {"text": text},
                            "required": ["text"]
                        }}
                    ]}},
                    "required": ["content"]
                }
            }),
        );
        let messages = ObjectBuilder::new()
            .schema_type(SchemaType::AnyValue)
            .description(Some(
                "At least one message has the role `user`, and every `user` message has text.",
            ))
            .extensions(Some(rules));
        let rule = ObjectBuilder::new().property("messages", messages);
        content.schema = Some(RefOr::T(Schema::AllOf(
            AllOfBuilder::new().item(request).item(rule).build(),
        )));
    }
}

/// [`SESSIONS_SHARED`], copied from `/chat/conversations…` under the
/// `seeds` tag, their operation ids `sessions_…` for `conversations_…`.
fn add_sessions_shared(doc: &mut utoipa::openapi::OpenApi) {
    for (rest, method) in SESSIONS_SHARED {
        let from = format!("/chat/conversations{rest}");
        // A twin that is missing leaves the session's operation missing,
        // which the coverage test reports.
        let Some(twin) = doc.paths.get_path_operation(&from, method.clone()) else {
            continue;
        };
        let operation = session_form(twin.clone());
        doc.paths
            .add_path_operation(format!("/chat/sessions{rest}"), vec![method], operation);
    }
}

fn session_form(mut operation: Operation) -> Operation {
    operation.tags = Some(vec!["seeds".to_owned()]);
    operation.operation_id =
        operation
            .operation_id
            .map(|id| match id.strip_prefix("conversations_") {
                Some(rest) => format!("sessions_{rest}"),
                None => format!("sessions_{id}"),
            });
    let note = "Seed 000's form (a session is a conversation): as the \
                `/chat/conversations…` operation of the same path, served by \
                the same handler.";
    operation.description = Some(match operation.description {
        Some(description) => format!("{note}\n\n{description}"),
        None => note.to_owned(),
    });
    operation
}

/// The payloads of streams whose last event is OpenAI's `data: [DONE]`,
/// which is not JSON.
const DONE_TERMINATED: [&str; 2] = ["ChatCompletionChunk", "UnifiedEvent"];
