//! dashboard-proxy: a WebSocket tunnel that turns `?token=` into
//! `Authorization: Bearer` towards the gateway (DESIGN §9), built on
//! [`confab_kit::ws_tunnel`].

pub mod relay;

use std::time::Duration;

use actix_web::web;
use anyhow::Context;
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
    // No max_message_bytes: a tunnel does not parse messages, the gateway's
    // upstream enforces its own limits, and the sockets this service accepts
    // itself only send a refusal and close.
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
    /// Speaks HTTP/1.1 only (a WebSocket handshake is an HTTP/1.1 upgrade,
    /// also towards a `wss://` gateway that would offer h2) and follows no
    /// redirect (a 3xx is a refusal, not a place to send the token to).
    pub http: reqwest::Client,
}

pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    let http = reqwest::Client::builder()
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the upstream HTTP client")?;
    let state = web::Data::new(RelayState {
        upstream_url: settings.upstream.url.clone(),
        connect_timeout: Duration::from_secs(settings.upstream.connect_timeout_secs),
        http,
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
