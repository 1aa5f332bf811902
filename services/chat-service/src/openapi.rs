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
//! describes each event as what an SSE parser reads ([`sse_events`]).

use utoipa::OpenApi;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{RefOr, Response};

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
    sse_events(&mut own);
    confab_kit::api::document(
        SERVICE,
        "Conversations, messages and server-owned chat turns that talk to agents over A2A.",
        own,
    )
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

/// Every `text/event-stream` response described as its events, as OpenAPI
/// 3.2 reads a stream's schema and API testers (schemathesis) read it in
/// 3.1 too: each event an object whose `data` is the JSON text of the
/// payload the annotation names (`contentMediaType` and `contentSchema`),
/// and `id` the event's id where the stream numbers them. Comment lines
/// (keep-alives) are no events.
fn sse_events(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    describe_events(response);
                }
            }
        }
    }
}

fn describe_events(response: &mut Response) {
    let Some(RefOr::T(content)) = response.content.get_mut("text/event-stream") else {
        return;
    };
    let Some(payload) = content.schema.take() else {
        return;
    };
    let done_terminated = matches!(&payload, RefOr::Ref(reference)
        if DONE_TERMINATED
            .iter()
            .any(|name| reference.ref_location.ends_with(&format!("/{name}"))));
    let json = ObjectBuilder::new()
        .schema_type(Type::String)
        .content_media_type("application/json")
        .content_schema(Some(payload))
        .description(Some("The event, as JSON text."));
    let data: RefOr<Schema> = if done_terminated {
        AnyOfBuilder::new()
            .item(json)
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["[DONE]"]))
                    .description(Some("The last event: the stream is over.")),
            )
            .into()
    } else {
        json.into()
    };
    let event = ObjectBuilder::new()
        .description(Some("One server-sent event."))
        .property("data", data)
        .required("data")
        .property(
            "id",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("The event's id, where the stream numbers its events.")),
        );
    content.schema = Some(event.into());
}
