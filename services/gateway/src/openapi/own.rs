//! The OpenAPI document of the routes the gateway answers itself
//! (`crate::routes::api`): accounts, tokens, API keys, administration, the
//! signing keys' JWKS, the services' revocation list and the console.
//! Generated from the handlers' `#[utoipa::path]` annotations and their
//! types; the coverage test (`tests/api/openapi.rs`) holds it against the
//! routes as registered.

use confab_kit::api::{BEARER, SERVICE_TOKEN};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::SERVICE;
use crate::routes::{admin, api_keys, auth, jwks, sessions};

/// The security scheme of the console's session: the access token in the
/// `confab_access` cookie, an alternative to [`BEARER`] wherever a signed-in
/// user is asked for (never an API key). A request that changes state by it
/// must pass the CSRF check (`crate::browser`).
pub const COOKIE: &str = "cookie";

#[derive(OpenApi)]
#[openapi(
    paths(
        auth::register::register,
        auth::login::login,
        auth::refresh::refresh,
        auth::logout::logout,
        auth::me::me,
        auth::password::change,
        sessions::list::list,
        sessions::revoke::revoke,
        api_keys::list::list,
        api_keys::create::create,
        api_keys::revoke::revoke,
        admin::users::list::list,
        admin::users::get::get,
        admin::users::update::update,
        admin::users::delete::delete,
        admin::users::password::reset,
        admin::users::budget::for_user,
        admin::users::budget::for_api_key,
        admin::audit::list::list,
        admin::audit::export::export,
        admin::signing_keys::list,
        admin::signing_keys::rotate,
        jwks::jwks,
        crate::revocations::serve,
        crate::console::page,
        crate::console::asset,
    ),
    components(schemas(auth::tokens::ConsoleTokens)),
    modifiers(&CookieScheme),
    tags(
        (name = "auth", description = "Accounts, sign-in and the tokens it gives, sessions."),
        (name = "api-keys", description = "A user's personal API keys (`cfk_…`), managed from a signed-in session."),
        (name = "admin", description = "Administrators only: users, budgets, the audit trail, signing keys."),
        (name = "internal", description = "For the services behind the gateway (the service token), and the keys that verify its tokens."),
        (name = "console", description = "The web console's page and files."),
    )
)]
pub struct OwnApi;

/// Adds the [`COOKIE`] security scheme.
struct CookieScheme;

impl Modify for CookieScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                COOKIE,
                SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                    "confab_access",
                    "The web console's session: the access token in the HttpOnly cookie that \
                     login sets for a request with `X-Confab-Client: console`. A request that \
                     changes state by it must come from the gateway's own origin (or a trusted \
                     one): else 403 `csrf_rejected`.",
                ))),
            );
    }
}

/// The gateway's own document: [`OwnApi`] with what every service shares.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = confab_kit::api::document(
        SERVICE,
        "Confab's front door: accounts and their tokens, personal API keys, administration, \
         and the web console. Every other path is routed to the services behind it.",
        OwnApi::openapi().merge_from(super::reference::Reference::openapi()),
    );
    // Every service serves its own document at /openapi.json; the
    // gateway's is the public one, at /api/v1/openapi.json.
    doc.paths.paths.remove("/openapi.json");
    // The gateway's /metrics is for the operator: the service token, or an
    // administrator's access token (not the console's cookie).
    if let Some(metrics) = doc
        .paths
        .paths
        .get_mut("/metrics")
        .and_then(|item| item.get.as_mut())
    {
        metrics.security = Some(vec![
            SecurityRequirement::new(SERVICE_TOKEN, Vec::<String>::new()),
            SecurityRequirement::new(BEARER, Vec::<String>::new()),
        ]);
    }
    // The export has every row: it refuses `limit`, which only pages take.
    if let Some(parameters) = doc
        .paths
        .paths
        .get_mut("/api/v1/admin/audit/export")
        .and_then(|item| item.get.as_mut())
        .and_then(|export| export.parameters.as_mut())
    {
        parameters.retain(
            |parameter| !matches!(parameter, RefOr::T(parameter) if parameter.name == "limit"),
        );
    }
    // A logout names what it ends: the refresh token, or every login
    // (only the console's cookies stand in for a body; see its description).
    if let Some(RefOr::T(logout)) = doc
        .components
        .as_mut()
        .and_then(|components| components.schemas.get_mut("LogoutBody"))
    {
        let everywhere = ObjectBuilder::new()
            .schema_type(Type::Boolean)
            .enum_values(Some([true]));
        *logout = AllOfBuilder::new()
            .item(logout.clone())
            .item(
                AnyOfBuilder::new()
                    .item(ObjectBuilder::new().required("refresh_token"))
                    .item(
                        ObjectBuilder::new()
                            .property("everywhere", everywhere)
                            .required("everywhere"),
                    ),
            )
            .build()
            .into();
    }
    // kit describes 415 for every body, as actix's JSON extractor answers
    // it; of the gateway's bodies only register's goes through it: the
    // others are read as JSON (or a form) whatever their Content-Type.
    for (path, item) in doc.paths.paths.iter_mut() {
        if path == "/api/v1/auth/register" {
            continue;
        }
        for operation in [&mut item.post, &mut item.put, &mut item.patch]
            .into_iter()
            .flatten()
        {
            operation.responses.responses.remove("415");
        }
    }
    doc
}
