//! llm-proxy-service: an OpenAI-compatible proxy in front of LLM providers
//! that records every call and streams live traces (DESIGN §10).

pub mod auth;
pub mod budget;
pub mod call;
pub mod error;
pub mod instances;
pub mod openapi;
pub mod pricing;
pub mod providers;
pub mod recorder;
pub mod request;
pub mod routes;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trace;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use confab_kit::api::Routes;
use confab_kit::auth::{JwtSettings, JwtVerifier, ServiceAuth};
use confab_kit::bus::{Bus, BusSettings};
use confab_kit::db::{self, Db};
use confab_kit::secrets::{RunEnv, Secret, refuse_development_secrets};
use confab_kit::server::{self, Readiness, Running, ServiceInfo};
use confab_kit::settings::{DatabaseSettings, ServerSettings, ServiceSettings, TelemetrySettings};
use confab_kit::slots::UserSlots;
use serde::Deserialize;

use crate::auth::AgentKeys;
use crate::budget::{BudgetSettings, Budgets};
use crate::call::RetrySettings;
use crate::instances::Instance;
use crate::pricing::{Pricing, PricingSettings};
use crate::providers::{ProviderSettings, Providers};
use crate::recorder::{Recorder, RecordingSettings};
use crate::trace::TraceSettings;
use crate::trace::hub::TraceHub;

pub const SERVICE: ServiceInfo = ServiceInfo {
    name: "llm-proxy-service",
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
    pub providers: BTreeMap<String, ProviderSettings>,
    pub models: ModelSettings,
    pub retry: RetrySettings,
    pub recording: RecordingSettings,
    pub trace: TraceSettings,
    /// Prices per model, and the currency of every cost (`crate::pricing`).
    #[serde(default)]
    pub pricing: PricingSettings,
    /// Default budgets of users and API keys (`crate::budget`).
    #[serde(default)]
    pub budgets: BudgetSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub service_token: String,
    #[serde(default)]
    pub agent_keys: HashMap<String, String>,
    #[serde(flatten)]
    pub jwt: JwtSettings,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct ModelSettings {
    #[serde(default)]
    pub aliases: BTreeMap<String, Vec<String>>,
}

impl ServiceSettings for Settings {
    const DEFAULTS: &'static str = include_str!("../config/default.toml");
}

/// What every handler and stream task shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub providers: Arc<Providers>,
    pub recorder: Recorder,
    pub hub: Arc<TraceHub>,
    pub service_auth: ServiceAuth,
    pub agent_keys: Arc<AgentKeys>,
    pub retry: RetrySettings,
    pub trace: TraceSettings,
    /// Each user's open trace subscriptions.
    pub subscribers: Arc<UserSlots>,
    /// This instance's id, on the rows of the calls it runs.
    pub instance: Arc<str>,
    pub pricing: Arc<Pricing>,
    pub budgets: Arc<Budgets>,
}

pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    let bus = Bus::connect(&settings.bus).await?;
    build_on(settings, bus).await
}

/// [`build`] on a bus of the caller's: tests run several instances in one
/// process on one in-process bus this way.
pub async fn build_on(settings: Settings, bus: Bus) -> anyhow::Result<Running> {
    let agent_keys = settings
        .auth
        .agent_keys
        .iter()
        .map(|(agent, key)| Secret::new(format!("auth.agent_keys.{agent}"), key));
    refuse_development_secrets(
        settings.env,
        std::iter::once(Secret::new(
            "auth.service_token",
            &settings.auth.service_token,
        ))
        .chain(agent_keys),
    )?;
    let db = Db::connect(&settings.database, &store::MIGRATIONS).await?;
    let providers = Providers::new(&settings.providers, settings.models.aliases.clone())?;
    let pricing = Pricing::new(&settings.pricing)?;
    let budgets = Budgets::new(&settings.budgets)?;
    let (recorder, recorder_stopped) = Recorder::start(db.clone(), &settings.recording)?;
    let hub = Arc::new(
        TraceHub::start(
            bus.clone(),
            db.clone(),
            recorder.clone(),
            settings.trace.clone(),
        )
        .await?,
    );
    let lease = Duration::from_secs(settings.recording.lease_secs.max(1));
    let instance = Arc::new(Instance::start(&bus, lease).await?);
    // Before serving: what a previous run left in flight (in process), or
    // dead instances' calls whose leases have expired. Not a reason to stay
    // down: the next round (every lease) tries again.
    if let Err(error) = instance.close_dead_calls(&db, &hub).await {
        tracing::warn!(%error, "closing the calls of dead instances failed");
    }
    let keeping = instance.keep(db.clone(), hub.clone());
    let state = web::Data::new(AppState {
        db: db.clone(),
        providers: Arc::new(providers),
        recorder,
        hub,
        service_auth: ServiceAuth::new(settings.auth.service_token.clone()),
        agent_keys: Arc::new(AgentKeys::new(settings.auth.agent_keys.clone())),
        retry: settings.retry.clone(),
        trace: settings.trace.clone(),
        subscribers: UserSlots::new(settings.trace.subscribers_per_user),
        instance: instance.id().into(),
        pricing: Arc::new(pricing),
        budgets: Arc::new(budgets),
    });
    let service_auth = web::Data::new(state.service_auth.clone());
    let verifier = web::Data::new(JwtVerifier::new(settings.auth.jwt.clone()));
    verifier.watch_revocations(&settings.auth.service_token);
    // Made once, before serving; each worker serves it at `/openapi.json`.
    let doc = openapi::document();
    let listener = server::bind(&settings.server)?;
    let running = server::serve(
        listener,
        &settings.server,
        SERVICE,
        Readiness::Dependencies {
            db: db.clone(),
            bus: bus.clone(),
        },
        move |cfg| {
            cfg.app_data(state.clone())
                .app_data(service_auth.clone())
                .app_data(verifier.clone())
                .app_data(web::PayloadConfig::new(4 * 1024 * 1024));
            routes::api(&mut Routes::new(cfg, &mut Vec::new()), &doc);
        },
    )?;
    tracing::info!(
        service = SERVICE.name,
        url = %format!("http://{}:{}", settings.server.host, running.port()),
        database = %db::describe(&settings.database.url),
        providers = ?settings.providers.keys().collect::<Vec<_>>(),
        "listening"
    );
    // Once the server has stopped, the lease tasks go (they hold the hub,
    // and so the recorder); once every handle is gone, the recorder writes
    // what is queued and ends: wait for it, then give the lease up, every
    // call being recorded as it ended.
    Ok(running
        .on_stop(async move { keeping.stop() })
        .on_stop(recorder_stopped)
        .on_stop(async move { instance.release().await }))
}
