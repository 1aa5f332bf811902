//! llm-proxy-service: an OpenAI-compatible proxy in front of LLM providers
//! that records every call (DESIGN §10).

pub mod auth;
pub mod providers;
pub mod routes;
pub mod store;

use std::collections::HashMap;

use actix_web::web;
use confab_kit::auth::ServiceAuth;
use confab_kit::db::{self, Db};
use confab_kit::server::{self, Readiness, Running, ServiceInfo};
use confab_kit::settings::ServiceSettings;
use confab_kit::settings::{DatabaseSettings, ServerSettings, TelemetrySettings};
use serde::Deserialize;

use crate::auth::AgentKeys;
use crate::providers::builtin::{Builtin, BuiltinSettings};

pub const SERVICE: ServiceInfo = ServiceInfo {
    name: "llm-proxy-service",
    version: env!("CARGO_PKG_VERSION"),
};

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    pub auth: AuthSettings,
    #[serde(default)]
    pub builtin: BuiltinSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub service_token: String,
    #[serde(default)]
    pub agent_keys: HashMap<String, String>,
}

impl ServiceSettings for Settings {
    const DEFAULTS: &'static str = include_str!("../config/default.toml");
}

/// What every handler shares.
pub struct AppState {
    pub db: Db,
    pub builtin: Builtin,
    pub service_auth: ServiceAuth,
    pub agent_keys: AgentKeys,
}

pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    let db = Db::connect(&settings.database, &store::MIGRATIONS).await?;
    let state = web::Data::new(AppState {
        db: db.clone(),
        builtin: Builtin::new(settings.builtin.clone()),
        service_auth: ServiceAuth::new(settings.auth.service_token.clone()),
        agent_keys: AgentKeys::new(settings.auth.agent_keys.clone()),
    });
    let listener = server::bind(&settings.server)?;
    let running = server::serve(
        listener,
        &settings.server,
        SERVICE,
        Readiness::Database(db.clone()),
        move |cfg| {
            cfg.app_data(state.clone())
                .app_data(web::PayloadConfig::new(4 * 1024 * 1024))
                .route(
                    "/v1/chat/completions",
                    web::post().to(routes::completions::create),
                )
                .route("/v1/models", web::get().to(routes::models::list));
        },
    )?;
    tracing::info!(
        service = SERVICE.name,
        url = %format!("http://{}:{}", settings.server.host, running.port()),
        database = %db::describe(&settings.database.url),
        "listening"
    );
    Ok(running)
}
