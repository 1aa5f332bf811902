//! dashboard-proxy: a WebSocket bridge that turns `?token=` into
//! `Authorization: Bearer` towards the gateway (DESIGN §9).

pub mod relay;

use std::time::Duration;

use actix_web::web;
use confab_kit::server::{self, Readiness, Running, ServiceInfo};
use confab_kit::settings::ServiceSettings;
use confab_kit::settings::{ServerSettings, TelemetrySettings};
use serde::Deserialize;

pub const SERVICE: ServiceInfo = ServiceInfo {
    name: "dashboard-proxy",
    version: env!("CARGO_PKG_VERSION"),
};

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    pub upstream: UpstreamSettings,
    pub relay: RelaySettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UpstreamSettings {
    pub url: String,
    pub connect_timeout_secs: u64,
    pub max_message_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RelaySettings {
    pub paths: Vec<String>,
}

impl ServiceSettings for Settings {
    const DEFAULTS: &'static str = include_str!("../config/default.toml");
}

pub struct RelayState {
    pub upstream_url: String,
    pub connect_timeout: Duration,
    pub max_message_bytes: usize,
}

pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    let state = web::Data::new(RelayState {
        upstream_url: settings.upstream.url.clone(),
        connect_timeout: Duration::from_secs(settings.upstream.connect_timeout_secs),
        max_message_bytes: settings.upstream.max_message_bytes,
    });
    let paths = settings.relay.paths.clone();
    let listener = server::bind(&settings.server)?;
    let running = server::serve(
        listener,
        &settings.server,
        SERVICE,
        Readiness::Always,
        move |cfg| {
            cfg.app_data(state.clone());
            for path in &paths {
                cfg.route(path, web::get().to(relay::relay));
            }
        },
    )?;
    tracing::info!(
        service = SERVICE.name,
        url = %format!("http://{}:{}", settings.server.host, running.port()),
        upstream = %settings.upstream.url,
        "listening"
    );
    Ok(running)
}
