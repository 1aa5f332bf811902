//! dashboard-proxy: a WebSocket tunnel that turns `?token=` into
//! `Authorization: Bearer` towards the gateway (DESIGN §9), built on
//! [`confab_kit::ws_tunnel`].

pub mod error;
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
    pub chat: ChatSettings,
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

/// The chat WebSocket path, and the dialect its clients get when they name
/// none.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatSettings {
    pub path: String,
    pub default_dialect: Dialect,
}

/// The two dialects of `/ws/chat` (DESIGN §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// Seed 001's flat frames.
    Compact,
    /// Seed 004's `{type, data, session_id, timestamp, error}` frames.
    Envelope,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Compact => "compact",
            Dialect::Envelope => "envelope",
        }
    }
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
    pub chat: ChatSettings,
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
        chat: settings.chat.clone(),
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
        chat_dialect = settings.chat.default_dialect.as_str(),
        "listening"
    );
    Ok(running)
}
