//! The agents chat-service knows: configured by id and endpoint, described
//! by the agent cards they publish (fetched when first asked for, cached).
//!
//! A turn always calls the configured endpoint: the operator's address wins
//! over what an agent says about itself (a card may name an address only
//! reachable from elsewhere, such as a container's public URL). The card
//! decides the protocol version: the newest JSON-RPC version it offers that
//! Confab speaks, unless the configuration names one. Every call carries
//! the agent's `key`, else the service token (DESIGN §5: agents accept
//! JSON-RPC only from an authenticated caller).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use confab_protocol::a2a::{AGENT_CARD_PATH, AgentCard, ProtocolVersion};
use serde::Deserialize;
use tokio::sync::RwLock;

use crate::a2a::client::{A2aError, AgentCredential, CardError, Endpoint};

/// How long a fetched card is trusted before it is fetched again.
const CARD_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Deserialize)]
pub struct AgentEntry {
    /// The agent's A2A JSON-RPC endpoint.
    pub url: String,
    /// The protocol version to speak ("1.0" or "0.3"), for an agent whose
    /// card cannot be fetched or should not be trusted; without it the card
    /// decides.
    #[serde(default)]
    pub protocol_version: Option<String>,
    /// The bearer token this agent accepts from chat-service (its inbound
    /// key); without it, or empty, the service token is sent.
    #[serde(default)]
    pub key: Option<AgentCredential>,
    /// Whether the agent's server speaks HTTP/2 without TLS and without
    /// negotiating it ("prior knowledge", RFC 9113 §3.3), as every Confab
    /// service does. Then one connection per chat-service worker carries
    /// every turn's stream to it, not one connection per turn: less CPU
    /// and memory per turn (`infra/bench/README.md`). Off by default: most
    /// servers outside Confab (uvicorn, for one) speak only HTTP/1.1
    /// without TLS, and a call to one of them with this on fails.
    #[serde(default)]
    pub http2: bool,
}

pub struct Registry {
    agents: BTreeMap<String, AgentEntry>,
    service_token: AgentCredential,
    cards: RwLock<HashMap<String, (AgentCard, Instant)>>,
    http: reqwest::Client,
}

impl Registry {
    /// Fails on a configured protocol version Confab does not speak.
    pub fn new(
        agents: BTreeMap<String, AgentEntry>,
        service_token: &str,
        http: reqwest::Client,
    ) -> anyhow::Result<Self> {
        for (id, agent) in &agents {
            if let Some(version) = &agent.protocol_version {
                anyhow::ensure!(
                    ProtocolVersion::parse(version).is_some(),
                    "agents.{id}.protocol_version = '{version}': Confab speaks A2A 1.0 and 0.3"
                );
            }
        }
        Ok(Self {
            agents,
            service_token: AgentCredential::new(service_token),
            cards: RwLock::new(HashMap::new()),
            http,
        })
    }

    /// Where to call agent `id` and in which version. Fetching the card can
    /// fail like the call itself (the agent is down), so it fails the same
    /// retryable way.
    pub async fn endpoint(&self, id: &str) -> Result<Endpoint, A2aError> {
        let entry = self
            .agents
            .get(id)
            .ok_or_else(|| A2aError::Unusable(format!("no agent {id} is registered")))?;
        let configured = entry
            .protocol_version
            .as_deref()
            .and_then(ProtocolVersion::parse);
        let version = match configured {
            Some(version) => version,
            None => {
                let card = self.card(id).await?;
                let (_, version) = card.jsonrpc_endpoint().ok_or_else(|| {
                    A2aError::Unusable(format!(
                        "agent {id}'s card offers no JSON-RPC interface in A2A 1.0 or 0.3"
                    ))
                })?;
                version
            }
        };
        let credential = entry
            .key
            .clone()
            .filter(|key| !key.is_empty())
            .unwrap_or_else(|| self.service_token.clone());
        Ok(Endpoint {
            url: entry.url.clone(),
            version,
            credential,
            http2: entry.http2,
        })
    }

    pub fn get(&self, id: &str) -> Option<&AgentEntry> {
        self.agents.get(id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.agents.contains_key(id)
    }

    pub fn ids(&self) -> impl Iterator<Item = (&String, &AgentEntry)> {
        self.agents.iter()
    }

    /// The agent's card, from the cache or freshly fetched.
    pub async fn card(&self, id: &str) -> Result<AgentCard, CardError> {
        if let Some((card, fetched)) = self.cards.read().await.get(id)
            && fetched.elapsed() < CARD_TTL
        {
            return Ok(card.clone());
        }
        let entry = self
            .agents
            .get(id)
            .ok_or_else(|| CardError::NotRegistered(id.to_owned()))?;
        let url = format!("{}{AGENT_CARD_PATH}", origin(&entry.url));
        let card: AgentCard = self
            .http
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|source| CardError::Fetch {
                url: url.clone(),
                source,
            })?
            .json()
            .await
            .map_err(|source| CardError::Read {
                url: url.clone(),
                source,
            })?;
        self.cards
            .write()
            .await
            .insert(id.to_owned(), (card.clone(), Instant::now()));
        Ok(card)
    }
}

/// `http://host:port/some/path` → `http://host:port`.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(slash) => &url[..after_scheme + slash],
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_card_lives_at_the_endpoints_origin() {
        assert_eq!(origin("http://127.0.0.1:8101/"), "http://127.0.0.1:8101");
        assert_eq!(
            origin("https://agents.example/a2a/v1"),
            "https://agents.example"
        );
        assert_eq!(origin("http://math:8101"), "http://math:8101");
    }
}
