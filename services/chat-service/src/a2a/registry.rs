//! The agents chat-service knows, from configuration.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct AgentEntry {
    /// The agent's A2A JSON-RPC endpoint.
    pub url: String,
}

#[derive(Debug, Clone, Default)]
pub struct Registry {
    agents: BTreeMap<String, AgentEntry>,
}

impl Registry {
    pub fn new(agents: BTreeMap<String, AgentEntry>) -> Self {
        Self { agents }
    }

    pub fn get(&self, id: &str) -> Option<&AgentEntry> {
        self.agents.get(id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.agents.contains_key(id)
    }
}
