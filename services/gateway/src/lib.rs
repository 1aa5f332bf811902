//! gateway: Confab's front door (DESIGN §5, §6). Users and tokens live here;
//! everything else is routed to the services behind it.

pub mod admin;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod browser;
pub mod console;
pub mod cors;
pub mod domain;
pub mod error;
pub mod limits;
pub mod openapi;
pub mod passwords;
pub mod proxy;
pub mod revocations;
pub mod routes;
pub mod services;
pub mod store;
pub mod tokens;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use anyhow::Context;
use confab_kit::api::Routes;
use confab_kit::auth::ServiceAuth;
use confab_kit::bus::{Bus, BusSettings};
use confab_kit::db::{self, Db};
use confab_kit::secrets::{RunEnv, Secret, refuse_development_secrets};
use confab_kit::server::{self, MetricsAccess, Readiness, Running, ServiceInfo};
use confab_kit::settings::ServiceSettings;
use confab_kit::settings::{DatabaseSettings, ServerSettings, TelemetrySettings};
use serde::Deserialize;

use crate::admin::AdminSettings;
use crate::browser::{Browser, BrowserSettings};
use crate::cors::CorsSettings;
use crate::limits::{RateLimitSettings, RateLimits};
use crate::proxy::instances::UpstreamConfig;
use crate::proxy::routing::{RouteConfig, RoutingTable};
use crate::tokens::KeyRing;

pub const SERVICE: ServiceInfo = ServiceInfo {
    name: "gateway",
    version: env!("CARGO_PKG_VERSION"),
};

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// `development` accepts the development secrets of the defaults
    /// (`CONFAB__ENV`; see `confab_kit::secrets`).
    #[serde(default)]
    pub env: RunEnv,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    /// Where this service's instances meet (DESIGN §15); none: one instance.
    #[serde(default)]
    pub bus: BusSettings,
    pub auth: AuthSettings,
    pub limits: LimitSettings,
    pub rate_limits: RateLimitSettings,
    pub cors: CorsSettings,
    /// The console's cookies and their CSRF check (see `browser`).
    #[serde(default)]
    pub browser: BrowserSettings,
    #[serde(default)]
    pub admin: AdminSettings,
    pub timeouts: TimeoutSettings,
    /// Each upstream's instances by name (one URL or several).
    pub upstreams: HashMap<String, UpstreamConfig>,
    #[serde(default)]
    pub proxy: ProxySettings,
    pub routes: Vec<RouteConfig>,
    /// Routes an operator adds to the defaults (`routes`).
    #[serde(default)]
    pub extra_routes: Vec<RouteConfig>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub service_token: String,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    /// How long a used refresh token may be presented again (a reply lost
    /// to a reload, two tabs at once) before that counts as reuse; 0: never.
    pub refresh_reuse_grace_secs: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    pub body_bytes: usize,
    /// Password hashes run at once (0: one per core).
    pub password_hashes: usize,
    /// API keys one user may hold (not revoked).
    pub api_keys_per_user: usize,
}

/// How the gateway talks to its upstreams.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProxySettings {
    /// The upstreams called over HTTP/2 without TLS by prior knowledge
    /// (Confab's services speak it): one connection per worker and
    /// instance carries every request and stream to it at once.
    #[serde(default)]
    pub http2: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TimeoutSettings {
    pub connect_secs: u64,
    pub response_secs: u64,
    /// How long an upstream instance that refused a connection is skipped
    /// (see `proxy::instances`).
    pub instance_retry_secs: u64,
}

impl ServiceSettings for Settings {
    const DEFAULTS: &'static str = include_str!("../config/default.toml");
}

/// What every handler shares.
pub struct GatewayState {
    pub db: Db,
    pub keys: Arc<KeyRing>,
    pub routes: RoutingTable,
    pub limits: RateLimits,
    /// The service token, as the header value proxied requests carry it
    /// (marked sensitive).
    pub service_token_header: reqwest::header::HeaderValue,
    /// Checks the service token of the services' own calls here.
    pub service_auth: ServiceAuth,
    /// The gateway's own calls to the services (administration).
    pub services: services::Services,
    pub response_timeout: Duration,
    pub body_limit: usize,
    pub api_keys_per_user: usize,
    pub refresh_ttl_secs: i64,
    pub refresh_reuse_grace: chrono::TimeDelta,
    /// The console's cookies and the CSRF check of requests they sign in.
    pub browser: Browser,
    /// Verified against when a login names an unknown user (equal timing).
    pub dummy_hash: String,
    /// Hashes and verifies passwords, a bounded number at a time.
    pub passwords: passwords::Hasher,
}

/// The service token as a header value, marked sensitive (kept out of
/// debug output).
fn service_token_value(token: &str) -> anyhow::Result<reqwest::header::HeaderValue> {
    let mut value = reqwest::header::HeaderValue::try_from(token)
        .context("auth.service_token cannot be sent in a header")?;
    value.set_sensitive(true);
    Ok(value)
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
    refuse_development_secrets(
        settings.env,
        [Secret::new(
            "auth.service_token",
            &settings.auth.service_token,
        )],
    )?;
    let db = Db::connect(&settings.database, &store::MIGRATIONS).await?;
    let bus = Bus::connect(&settings.bus).await?;
    let passwords = passwords::Hasher::new(settings.limits.password_hashes);
    admin::bootstrap(&db, &settings.admin, &passwords)
        .await
        .context("bootstrapping the configured admin")?;
    let revoked = Arc::new(confab_kit::auth::Revocations::default());
    revoked.replace(
        revocations::current(&db, settings.auth.access_token_ttl_secs)
            .await
            .context("reading the token revocations")?,
    );
    revocations::keep_loaded(db.clone(), &revoked, settings.auth.access_token_ttl_secs);
    let keys = KeyRing::load(
        &db,
        &settings.auth.issuer,
        &settings.auth.audience,
        settings.auth.access_token_ttl_secs,
        revoked,
    )
    .await
    .context("loading signing keys")?;
    let route_configs: Vec<RouteConfig> = settings
        .routes
        .iter()
        .chain(&settings.extra_routes)
        .cloned()
        .collect();
    let routes = RoutingTable::new(
        &route_configs,
        &settings.upstreams,
        Duration::from_secs(settings.timeouts.instance_retry_secs),
        &settings.proxy.http2,
    )?;
    let console = web::Data::new(console::Console::new()?);
    let public_document = web::Data::new(openapi::public::PublicDocument::new(
        &openapi::own::document(),
        Duration::from_secs(settings.timeouts.response_secs),
    )?);
    let cors = cors::CorsPolicy::new(&settings.cors)?;
    let browser = Browser::new(
        &settings.browser,
        settings.auth.access_token_ttl_secs,
        settings.auth.refresh_token_ttl_secs,
    )?;
    let connect_timeout = Duration::from_secs(settings.timeouts.connect_secs);
    let websocket = proxy::UpstreamClient::websocket_client(connect_timeout)?;
    // The gateway faces clients: its metrics (routes, traffic, timings) go
    // to the service token or an admin only (issue 16).
    let metrics_access = {
        let keys = keys.clone();
        let service = ServiceAuth::new(settings.auth.service_token.as_str());
        MetricsAccess::Guarded(Arc::new(move |req| {
            let (keys, service) = (keys.clone(), service.clone());
            Box::pin(async move { auth::authenticate_operator(&req, &service, &keys).await })
        }))
    };
    let state = web::Data::new(GatewayState {
        db: db.clone(),
        keys,
        routes,
        limits: RateLimits::open(&bus, &settings.rate_limits)
            .await
            .context("opening the rate limits' buckets")?,
        service_token_header: service_token_value(&settings.auth.service_token)?,
        service_auth: ServiceAuth::new(settings.auth.service_token.as_str()),
        services: services::Services::new(
            &settings.upstreams,
            service_token_value(&settings.auth.service_token)?,
            connect_timeout,
            Duration::from_secs(settings.timeouts.response_secs),
        )?,
        response_timeout: Duration::from_secs(settings.timeouts.response_secs),
        body_limit: settings.limits.body_bytes,
        api_keys_per_user: settings.limits.api_keys_per_user,
        refresh_ttl_secs: settings.auth.refresh_token_ttl_secs,
        refresh_reuse_grace: chrono::TimeDelta::seconds(
            settings.auth.refresh_reuse_grace_secs.into(),
        ),
        browser,
        dummy_hash: passwords.dummy_hash().await?,
        passwords,
    });
    let body_limit = settings.limits.body_bytes;
    let running = server::serve_with(
        listener,
        &settings.server,
        SERVICE,
        Readiness::Dependencies {
            db: db.clone(),
            bus: bus.clone(),
        },
        metrics_access,
        move |cfg| {
            // Everything the gateway serves itself or proxies sits in one
            // scope so the CORS policy wraps it (and answers preflights).
            // One upstream client per worker: its connections live on this
            // worker's thread, so a proxied request never waits for another
            // thread to be scheduled.
            let http = proxy::UpstreamClient::new(connect_timeout, websocket.clone());
            let api = web::scope("")
                .wrap(cors.middleware())
                .app_data(state.clone())
                .app_data(web::Data::new(http))
                .app_data(web::PayloadConfig::new(body_limit))
                .app_data(web::JsonConfig::default().limit(body_limit))
                .app_data(console.clone())
                .app_data(public_document.clone())
                .configure(|cfg| routes::api(&mut Routes::new(cfg, &mut Vec::new())));
            // Everything else is looked up in the routing table.
            let api = api.default_service(web::to(proxy::forward::forward));
            cfg.service(api);
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
