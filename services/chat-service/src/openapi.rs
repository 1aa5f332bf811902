//! chat-service's OpenAPI document, generated from its handlers'
//! `#[utoipa::path]` annotations and the wire types they (de)serialise.

use utoipa::OpenApi;

use crate::SERVICE;
use crate::routes::conversations;

#[derive(OpenApi)]
#[openapi(paths(
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
))]
struct ApiDoc;

/// The document `GET /openapi.json` serves.
pub fn document() -> utoipa::openapi::OpenApi {
    confab_kit::api::document(
        SERVICE,
        "Conversations, messages and server-owned chat turns that talk to agents over A2A.",
        ApiDoc::openapi(),
    )
}
