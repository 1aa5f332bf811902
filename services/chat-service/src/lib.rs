//! chat-service: conversations, messages and chat turns that talk to agents
//! over A2A (DESIGN §7, §8).

pub mod a2a;
pub mod api;
pub mod domain;
pub mod error;
pub mod openapi;
pub mod routes;
pub mod store;
pub mod tree_patch;
pub mod trees;
pub mod turns;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use confab_kit::api::Routes;
use confab_kit::auth::{JwtSettings, JwtVerifier, ServiceAuth};
use confab_kit::bus::{Bus, BusSettings};
use confab_kit::db::{self, Db};
use confab_kit::secrets::{RunEnv, Secret, refuse_development_secrets};
use confab_kit::server::{self, Readiness, Running, ServiceInfo};
use confab_kit::settings::ServiceSettings;
use confab_kit::settings::{DatabaseSettings, ServerSettings, TelemetrySettings};
use confab_kit::slots::UserSlots;
use serde::Deserialize;

use crate::a2a::client::A2aClient;
use crate::a2a::registry::{AgentEntry, Registry};
use crate::turns::budget::{LimitSettings, TurnBudget};
use crate::turns::claims::Claims;
use crate::turns::events::TurnEvents;
use crate::turns::in_flight::InFlight;
use crate::turns::llm_budget::{BudgetSettings, LlmBudget};
use crate::turns::notices::Notices;
use crate::turns::{RetryPolicy, TurnServices};

pub const SERVICE: ServiceInfo = ServiceInfo {
    name: "chat-service",
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
    pub chat: ChatSettings,
    pub a2a: A2aSettings,
    pub agents: BTreeMap<String, AgentEntry>,
    /// What one user may keep busy (DESIGN §14).
    pub limits: LimitSettings,
    /// The LLM budgets asked before every turn (issue 21).
    pub budget: BudgetSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub service_token: String,
    /// User access tokens are verified against the gateway's keys.
    #[serde(flatten)]
    pub jwt: JwtSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChatSettings {
    pub max_message_chars: usize,
    pub default_agent: String,
    pub history_messages: i64,
    /// How often a chat WebSocket is pinged; a peer silent for two
    /// intervals is dropped.
    pub ws_heartbeat_ms: u64,
    /// Largest tree document, serialised (DESIGN §14).
    pub tree_max_bytes: usize,
    /// Most operations in one tree patch (an agent's or a client's).
    pub tree_max_patch_ops: usize,
    /// How long an ended turn's event log stays in memory for clients that
    /// re-attach late.
    pub ended_turn_linger_secs: u64,
    /// Seconds and bytes the bus keeps turns' events (see `turns::log`).
    pub turn_events_max_age_secs: u64,
    pub turn_events_max_bytes: u64,
    /// Seconds an instance's lease lasts unless it writes it again (every
    /// third of it): how soon another instance may take over the turns of
    /// one that died (see `turns::claims`).
    pub turn_lease_secs: u64,
    /// How often a stream kept open between turns gets a comment line.
    pub sse_keep_alive_ms: u64,
}

impl ChatSettings {
    pub fn tree_limits(&self) -> tree_patch::TreeLimits {
        tree_patch::TreeLimits {
            max_bytes: self.tree_max_bytes,
            max_ops: self.tree_max_patch_ops,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct A2aSettings {
    pub connect_timeout_secs: u64,
    /// Longest silence of an agent mid-stream before the stream counts as
    /// dropped.
    pub read_timeout_secs: u64,
    /// Attempts to reach an agent before the first event (DESIGN §8).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled for each further one, ±20 %.
    pub retry_base_ms: u64,
}

impl ServiceSettings for Settings {
    const DEFAULTS: &'static str = include_str!("../config/default.toml");
}

/// What every handler shares.
pub struct AppState {
    pub db: Db,
    /// Where turns' events go, for readers on any instance.
    pub events: Arc<TurnEvents>,
    pub chat: ChatSettings,
    pub agents: Arc<Registry>,
    pub a2a: A2aClient,
    pub in_flight: Arc<InFlight>,
    pub retry: RetryPolicy,
    /// Each user's turns per minute and in flight, for every entry point.
    pub turn_budget: Arc<TurnBudget>,
    /// Each user's open chat WebSockets.
    pub sockets: Arc<UserSlots>,
    /// Each user's open conversation followers (seed 000's `EventSource`).
    pub followers: Arc<UserSlots>,
    /// News of each conversation (turns started, tree edits) for the
    /// sockets attached to it.
    pub notices: Arc<Notices>,
}

impl AppState {
    /// What starting a turn takes from the state ([`turns::begin::begin`]).
    pub fn turn_services(&self) -> TurnServices<'_> {
        TurnServices {
            db: &self.db,
            events: &self.events,
            agents: &self.agents,
            client: &self.a2a,
            in_flight: &self.in_flight,
            notices: &self.notices,
            history_messages: self.chat.history_messages,
            tree_limits: self.chat.tree_limits(),
            retry: self.retry,
        }
    }
}

pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    let agent_keys = settings.agents.iter().filter_map(|(id, agent)| {
        let key = agent.key.as_ref()?;
        Some(Secret::new(format!("agents.{id}.key"), key.expose()))
    });
    refuse_development_secrets(
        settings.env,
        std::iter::once(Secret::new(
            "auth.service_token",
            &settings.auth.service_token,
        ))
        .chain(agent_keys),
    )?;
    let db = Db::connect(&settings.database, &store::MIGRATIONS).await?;
    let bus = Bus::connect(&settings.bus).await?;
    // An ended turn's log is read from the bus: it must outlive the linger.
    anyhow::ensure!(
        settings.chat.ended_turn_linger_secs < settings.chat.turn_events_max_age_secs,
        "chat.ended_turn_linger_secs ({}) must be less than chat.turn_events_max_age_secs ({})",
        settings.chat.ended_turn_linger_secs,
        settings.chat.turn_events_max_age_secs,
    );
    bus.stream(&turns::log::stream_spec(
        Duration::from_secs(settings.chat.turn_events_max_age_secs),
        settings.chat.turn_events_max_bytes,
    ))
    .await?;
    let events = TurnEvents::hear(&bus).await?;
    let claims = Claims::open(
        &bus,
        Duration::from_secs(settings.chat.turn_lease_secs.max(1)),
        Duration::from_secs(settings.chat.turn_events_max_age_secs),
    )
    .await?;
    // One client for the services chat-service calls over plain HTTP
    // (agents' cards, llm-proxy-service's budget checks): one pool.
    let http = reqwest::Client::new();
    let in_flight = Arc::new(InFlight::new(
        Duration::from_secs(settings.chat.ended_turn_linger_secs),
        claims,
        events.clone(),
        db.clone(),
    ));
    in_flight.keep_instance();
    in_flight.serve_control().await?;
    let state = web::Data::new(AppState {
        db: db.clone(),
        events,
        chat: settings.chat.clone(),
        agents: Arc::new(Registry::new(
            settings.agents.clone(),
            &settings.auth.service_token,
            http.clone(),
        )?),
        a2a: A2aClient::new(
            Duration::from_secs(settings.a2a.connect_timeout_secs),
            Duration::from_secs(settings.a2a.read_timeout_secs),
        )?,
        in_flight: in_flight.clone(),
        retry: RetryPolicy {
            max_attempts: settings.a2a.max_attempts.max(1),
            base: Duration::from_millis(settings.a2a.retry_base_ms),
        },
        turn_budget: TurnBudget::open(
            &bus,
            &settings.limits,
            in_flight.instance_lease().clone(),
            LlmBudget::new(&settings.budget, http, &settings.auth.service_token),
        )
        .await?,
        sockets: UserSlots::new(settings.limits.sockets_per_user),
        followers: UserSlots::new(settings.limits.followers_per_user),
        notices: Notices::on_bus(&bus).await?,
    });
    // Before serving: the turns a stopped instance (this one's last run,
    // or another that died) left in flight and nobody claims go on here;
    // then the same every lease.
    turns::takeover::sweep(&state).await?;
    tokio::spawn(turns::takeover::watch(state.clone().into_inner()));
    let service_auth = web::Data::new(ServiceAuth::new(settings.auth.service_token.clone()));
    let verifier = web::Data::new(JwtVerifier::new(settings.auth.jwt.clone()));
    verifier.watch_revocations(&settings.auth.service_token);
    let listener = server::bind(&settings.server)?;
    let doc = openapi::document();
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
                .app_data(verifier.clone());
            api::api(&mut Routes::new(cfg, &mut Vec::new()), &doc);
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
