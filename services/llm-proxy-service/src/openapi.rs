//! The service's OpenAPI 3.1 document, generated from its handlers'
//! annotations and wire types, served at `GET /openapi.json`.

use utoipa::OpenApi;

use crate::SERVICE;
use crate::routes::{budgets, calls, completions, models, traces, usage, users};
use crate::trace::ws;

#[derive(OpenApi)]
#[openapi(
    paths(
        completions::create,
        models::list,
        models::get,
        calls::list,
        calls::get,
        traces::list,
        usage::report,
        budgets::status::check,
        budgets::put::store,
        budgets::get::read,
        budgets::delete::reset,
        users::delete,
        ws::subscribe
    ),
    // Named in the WebSocket's 101 description, not in a body.
    components(schemas(confab_protocol::trace::TraceFrame)),
    tags(
        (name = "openai", description = "OpenAI-compatible chat completions and models, through the configured providers."),
        (name = "history", description = "Recorded LLM calls and trace events, scoped to the caller."),
        (name = "traces", description = "Live trace events over a WebSocket."),
        (name = "usage", description = "LLM use and its cost."),
        (name = "budgets", description = "Budgets on LLM use, for the services (the service token)."),
        (name = "internal", description = "For the gateway alone.")
    )
)]
struct ApiDoc;

/// llm-proxy-service's document, with what every service shares.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = confab_kit::api::document(
        SERVICE,
        "OpenAI-compatible proxy in front of LLM providers: records every call, streams live traces, reports usage and keeps budgets.",
        {
            let mut own = ApiDoc::openapi();
            // A stream of chunks ends with OpenAI's `data: [DONE]`.
            confab_kit::api::describe_event_streams(&mut own, &["ChatCompletionChunk"]);
            own
        },
    );
    // These two read their body as bytes, whatever its Content-Type: kit's
    // shared 415 is not one of their answers.
    for (path, item) in &mut doc.paths.paths {
        let operation = match path.as_str() {
            "/v1/chat/completions" => item.post.as_mut(),
            "/budgets/{subject}/{id}" => item.put.as_mut(),
            _ => None,
        };
        if let Some(operation) = operation {
            operation.responses.responses.remove("415");
        }
    }
    doc
}
