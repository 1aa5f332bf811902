//! The gateway's own endpoints; everything else is proxied (`crate::proxy`).

pub mod admin;
pub mod api_keys;
pub mod auth;
pub mod jwks;
pub mod sessions;

use confab_kit::api::Routes;

use crate::{console, openapi, revocations};

/// Every route the gateway answers itself, registered and listed (the
/// coverage test holds the list against `crate::openapi::own`). Each path
/// is whole: a request none of them takes goes on to the routing table.
pub fn api(r: &mut Routes<'_>) {
    r.get("/", console::page)
        .get("/assets/{build}/{file:.*}", console::asset)
        .get("/.well-known/jwks.json", jwks::jwks)
        .get("/internal/revocations", revocations::serve)
        .post("/api/v1/auth/register", auth::register::register)
        .post("/api/v1/auth/login", auth::login::login)
        .post("/api/v1/auth/refresh", auth::refresh::refresh)
        .post("/api/v1/auth/logout", auth::logout::logout)
        .get("/api/v1/auth/me", auth::me::me)
        .get("/api/v1/api-keys", api_keys::list::list)
        .post("/api/v1/api-keys", api_keys::create::create)
        .delete("/api/v1/api-keys/{id}", api_keys::revoke::revoke)
        .post("/api/v1/auth/password", auth::password::change)
        .get("/api/v1/auth/sessions", sessions::list::list)
        .delete("/api/v1/auth/sessions/{id}", sessions::revoke::revoke)
        .get("/api/v1/admin/users", admin::users::list::list)
        .get("/api/v1/admin/users/{id}", admin::users::get::get)
        .patch("/api/v1/admin/users/{id}", admin::users::update::update)
        .delete("/api/v1/admin/users/{id}", admin::users::delete::delete)
        .post(
            "/api/v1/admin/users/{id}/password",
            admin::users::password::reset,
        )
        .put(
            "/api/v1/admin/users/{id}/budget",
            admin::users::budget::for_user,
        )
        .put(
            "/api/v1/admin/api-keys/{id}/budget",
            admin::users::budget::for_api_key,
        )
        .get("/api/v1/admin/audit", admin::audit::list::list)
        .get("/api/v1/admin/audit/export", admin::audit::export::export)
        .get("/api/v1/admin/signing-keys", admin::signing_keys::list)
        .post("/api/v1/admin/signing-keys", admin::signing_keys::rotate)
        .get("/api/v1/openapi.json", openapi::reference::document)
        .get("/api/docs", openapi::reference::page);
}
