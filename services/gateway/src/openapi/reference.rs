//! The API's reference: `GET /api/v1/openapi.json` (the document, see
//! [`super::public`]) and `GET /api/docs` (a page that renders it).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::OpenApi;

use super::public::PublicDocument;
use crate::GatewayState;
use crate::console::Console;
use confab_kit::ApiError;

/// The two routes' own description, part of the gateway's document.
#[derive(OpenApi)]
#[openapi(paths(document, page))]
pub struct Reference;

/// The public API as one OpenAPI 3.1 document: the gateway's routes and
/// every service's behind it, at the paths a client calls.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "reference",
    responses(
        (status = 200, description = "This document (OpenAPI 3.1).", content_type = "application/json"),
        (status = 502, description = "`upstream_unavailable`: a service behind the gateway cannot be reached for its part.", body = confab_protocol::error::ErrorBody),
        (status = 504, description = "`upstream_timeout`: a service behind the gateway did not answer in time for its part.", body = confab_protocol::error::ErrorBody)
    )
)]
pub async fn document(
    state: web::Data<GatewayState>,
    doc: web::Data<PublicDocument>,
) -> Result<HttpResponse, ApiError> {
    let body = doc.current(&state.routes).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body))
}

/// The API reference: a page that renders the document, served like the
/// console (its CSP, its assets).
#[utoipa::path(
    get,
    path = "/api/docs",
    tag = "reference",
    responses((status = 200, description = "The API reference page.", content_type = "text/html"))
)]
pub async fn page(req: HttpRequest, console: web::Data<Console>) -> HttpResponse {
    console.docs(&req)
}
