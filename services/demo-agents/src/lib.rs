//! demo-agents: real A2A agents that think through llm-proxy-service
//! (DESIGN §8). Each agent is its own HTTP server on its own port.

pub mod agent;
pub mod auth;
pub mod card;
pub mod kind;
pub mod llm;
pub mod rpc;
pub mod tasks;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tools;
pub mod tree;

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use anyhow::Context;
use confab_kit::http_client::{PerThreadClient, SERVICE_POOL_IDLE};
use confab_kit::secrets::{RunEnv, Secret, refuse_development_secrets};
use confab_kit::server::{self, Readiness, Running, ServiceInfo};
use confab_kit::settings::ServiceSettings;
use confab_kit::settings::{ServerSettings, TelemetrySettings};
use confab_protocol::a2a::AGENT_CARD_PATH;
use serde::Deserialize;

use crate::kind::AgentKind;
use crate::llm::{LlmClient, LlmSettings};

pub const SERVICE: ServiceInfo = ServiceInfo {
    name: "demo-agents",
    version: env!("CARGO_PKG_VERSION"),
};

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// `development` accepts the development secrets of the defaults
    /// (`CONFAB__ENV`; see `confab_kit::secrets`).
    #[serde(default)]
    pub env: RunEnv,
    pub host: String,
    #[serde(default)]
    pub workers: usize,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    pub llm: LlmSettings,
    pub auth: AuthSettings,
    pub limits: LimitSettings,
    pub agents: BTreeMap<String, AgentSettings>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// The services' shared token: a caller presenting it may call every
    /// agent (chat-service does).
    pub service_token: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    /// Tasks one agent runs at once; past it a new one is refused (429).
    pub max_running_tasks: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AgentSettings {
    /// 0 picks a free port (tests).
    pub port: u16,
    /// The agent key llm-proxy-service knows this agent by.
    pub key: String,
    /// A key only this agent accepts from its callers, besides the service
    /// token (for a caller that should reach this agent and no other
    /// service). None, or empty, accepts the service token only.
    #[serde(default)]
    pub inbound_key: Option<String>,
    /// The URL the agent card advertises, when clients reach the agent by
    /// another name than `host:port` (a container name, a load balancer).
    #[serde(default)]
    pub public_url: Option<String>,
}

impl ServiceSettings for Settings {
    const DEFAULTS: &'static str = include_str!("../config/default.toml");
}

/// What one agent's handlers share.
pub struct AgentState {
    pub kind: AgentKind,
    pub llm: LlmClient,
    pub tasks: std::sync::Arc<tasks::TaskStore>,
    pub credentials: auth::Credentials,
}

/// The running agents, by name.
pub struct Application {
    agents: Vec<(String, Running)>,
}

impl Application {
    /// The port of agent `name`, if it runs.
    pub fn port(&self, name: &str) -> Option<u16> {
        self.agents
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r.port())
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let servers = self.agents.into_iter().map(|(_, r)| r.run_until_stopped());
        for result in futures_util::future::join_all(servers).await {
            result?;
        }
        Ok(())
    }
}

pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let agent_secrets = settings.agents.iter().flat_map(|(name, agent)| {
        let inbound = agent
            .inbound_key
            .as_deref()
            .map(|key| Secret::new(format!("agents.{name}.inbound_key"), key));
        std::iter::once(Secret::new(format!("agents.{name}.key"), &agent.key)).chain(inbound)
    });
    refuse_development_secrets(
        settings.env,
        std::iter::once(Secret::new(
            "auth.service_token",
            &settings.auth.service_token,
        ))
        .chain(agent_secrets),
    )?;
    let http2 = settings.llm.http2;
    let http = PerThreadClient::new(move || {
        let builder = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .pool_idle_timeout(SERVICE_POOL_IDLE);
        if http2 {
            builder.http2_prior_knowledge()
        } else {
            builder.http1_only()
        }
    })
    .context("building the HTTP client")?;
    anyhow::ensure!(
        settings.limits.max_running_tasks > 0,
        "limits.max_running_tasks must be at least 1 (it is how many tasks an agent runs at once)"
    );
    let mut agents = Vec::new();
    for (name, agent) in &settings.agents {
        let kind = AgentKind::parse(name)
            .with_context(|| format!("unknown agent '{name}' in settings"))?;
        let server_settings = ServerSettings {
            host: settings.host.clone(),
            port: agent.port,
            workers: settings.workers,
            shutdown_timeout_secs: 30,
        };
        let listener =
            server::bind(&server_settings).with_context(|| format!("binding agent {name}"))?;
        let port = listener.local_addr()?.port();
        let base_url = agent
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}:{port}", settings.host));
        let card = web::Data::new(card::card(kind, &base_url));
        let state = web::Data::new(AgentState {
            kind,
            llm: LlmClient::new(http.clone(), settings.llm.clone(), agent.key.clone()),
            tasks: std::sync::Arc::new(tasks::TaskStore::new(settings.limits.max_running_tasks)),
            credentials: auth::Credentials::new(
                &settings.auth.service_token,
                agent.inbound_key.as_deref(),
            ),
        });
        let running = server::serve(
            listener,
            &server_settings,
            SERVICE,
            Readiness::Always,
            move |cfg| {
                cfg.app_data(state.clone())
                    .app_data(card.clone())
                    .route(AGENT_CARD_PATH, web::get().to(serve_card))
                    .route("/.well-known/agent.json", web::get().to(serve_card))
                    .route("/", web::post().to(rpc::handle));
            },
        )?;
        tracing::info!(agent = %name, url = %base_url, llm = %settings.llm.base_url, "agent listening");
        agents.push((name.clone(), running));
    }
    Ok(Application { agents })
}

async fn serve_card(card: web::Data<confab_protocol::a2a::AgentCard>) -> HttpResponse {
    HttpResponse::Ok().json(card.get_ref())
}
