//! gateway: Confab's front door (DESIGN §5, §6). Users and tokens live here;
//! everything else is routed to the services behind it.

pub mod auth;
pub mod domain;
pub mod passwords;
pub mod proxy;
pub mod routes;
pub mod store;
pub mod tokens;

use std::collections::HashMap;
use std::time::Duration;

use actix_web::web;
use anyhow::Context;
use confab_kit::db::{self, Db};
use confab_kit::server::{self, Readiness, Running, ServiceInfo};
use confab_kit::settings::ServiceSettings;
use confab_kit::settings::{DatabaseSettings, ServerSettings, TelemetrySettings};
use serde::Deserialize;

use crate::proxy::routing::{RouteConfig, RoutingTable};
use crate::tokens::KeyRing;

pub const SERVICE: ServiceInfo = ServiceInfo {
    name: "gateway",
    version: env!("CARGO_PKG_VERSION"),
};

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    pub auth: AuthSettings,
    pub limits: LimitSettings,
    pub timeouts: TimeoutSettings,
    pub upstreams: HashMap<String, String>,
    pub routes: Vec<RouteConfig>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub service_token: String,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    pub body_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TimeoutSettings {
    pub connect_secs: u64,
    pub response_secs: u64,
}

impl ServiceSettings for Settings {
    const DEFAULTS: &'static str = include_str!("../config/default.toml");
}

/// What every handler shares.
pub struct GatewayState {
    pub db: Db,
    pub keys: KeyRing,
    pub routes: RoutingTable,
    pub http: reqwest::Client,
    pub service_token: String,
    pub response_timeout: Duration,
    pub refresh_ttl_secs: i64,
    /// Verified against when a login names an unknown user (equal timing).
    pub dummy_hash: String,
}

pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    let listener = server::bind(&settings.server)?;
    build_on(listener, settings).await
}

/// [`build`] on a listener bound beforehand, so services started earlier
/// can already be given the gateway's address (its JWKS URL, in tests).
pub async fn build_on(
    listener: std::net::TcpListener,
    settings: Settings,
) -> anyhow::Result<Running> {
    let db = Db::connect(&settings.database, &store::MIGRATIONS).await?;
    let keys = KeyRing::load(
        &db,
        &settings.auth.issuer,
        &settings.auth.audience,
        settings.auth.access_token_ttl_secs,
    )
    .await
    .context("loading signing keys")?;
    let routes = RoutingTable::new(&settings.routes, &settings.upstreams)?;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(settings.timeouts.connect_secs))
        .build()
        .context("building the HTTP client")?;
    let state = web::Data::new(GatewayState {
        db: db.clone(),
        keys,
        routes,
        http,
        service_token: settings.auth.service_token.clone(),
        response_timeout: Duration::from_secs(settings.timeouts.response_secs),
        refresh_ttl_secs: settings.auth.refresh_token_ttl_secs,
        dummy_hash: passwords::dummy_hash().await?,
    });
    let body_limit = settings.limits.body_bytes;
    let running = server::serve(
        listener,
        &settings.server,
        SERVICE,
        Readiness::Database(db.clone()),
        move |cfg| {
            cfg.app_data(state.clone())
                .app_data(web::PayloadConfig::new(body_limit))
                .app_data(web::JsonConfig::default().limit(body_limit))
                .route("/.well-known/jwks.json", web::get().to(routes::jwks::jwks))
                .route(
                    "/api/v1/auth/register",
                    web::post().to(routes::auth::register::register),
                )
                .route(
                    "/api/v1/auth/login",
                    web::post().to(routes::auth::login::login),
                )
                .route("/api/v1/auth/me", web::get().to(routes::auth::me::me));
            for route in state.routes.routes() {
                cfg.route(&route.prefix, web::to(proxy::forward::forward))
                    .route(
                        &format!("{}/{{tail:.*}}", route.prefix),
                        web::to(proxy::forward::forward),
                    );
            }
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
