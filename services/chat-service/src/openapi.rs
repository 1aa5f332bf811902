//! chat-service's OpenAPI document, generated from its handlers'
//! `#[utoipa::path]` annotations and the wire types they (de)serialise.

use utoipa::OpenApi;

use crate::SERVICE;

#[derive(OpenApi)]
#[openapi()]
struct ApiDoc;

/// The document `GET /openapi.json` serves.
pub fn document() -> utoipa::openapi::OpenApi {
    confab_kit::api::document(
        SERVICE,
        "Conversations, messages and server-owned chat turns that talk to agents over A2A.",
        ApiDoc::openapi(),
    )
}
