//! Agent cards: what an agent publishes at `/.well-known/agent-card.json`.
//!
//! One type reads both generations of card. A v1.0 card lists its endpoints
//! in `supportedInterfaces`, each with a binding and a protocol version; a
//! v0.3 card has one `url` with its `preferredTransport`, `protocolVersion`
//! and `additionalInterfaces`. A card may carry both, as the demo agents'
//! cards do, so clients of either generation find an endpoint they speak.

use serde::{Deserialize, Serialize};

use super::{JSONRPC_BINDING, ProtocolVersion};

/// One endpoint of a v1.0 card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentInterface {
    pub url: String,
    pub protocol_binding: String,
    pub protocol_version: String,
}

/// One endpoint of a v0.3 card's `additionalInterfaces`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyInterface {
    pub url: String,
    pub transport: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AgentCapabilities {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_notifications: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentSkill {
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentCard {
    pub name: String,
    pub description: String,
    /// v1.0 endpoints; empty on a v0.3-only card.
    #[serde(default)]
    pub supported_interfaces: Vec<AgentInterface>,
    pub version: String,
    #[serde(default)]
    pub capabilities: AgentCapabilities,
    #[serde(default)]
    pub default_input_modes: Vec<String>,
    #[serde(default)]
    pub default_output_modes: Vec<String>,
    #[serde(default)]
    pub skills: Vec<AgentSkill>,
    /// v0.3: the main endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// v0.3: the binding of `url` (JSON-RPC when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_transport: Option<String>,
    /// v0.3: the protocol version of `url` (e.g. "0.3.0").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    /// v0.3: more endpoints, same protocol version as `url`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_interfaces: Vec<LegacyInterface>,
}

impl AgentCard {
    /// Every endpoint the card names, v1.0 and v0.3 alike.
    pub fn interfaces(&self) -> Vec<AgentInterface> {
        let mut all = self.supported_interfaces.clone();
        if let Some(url) = &self.url {
            // A v0.3 card without a protocolVersion predates the field; 0.3
            // is the oldest version Confab speaks, so that is the guess.
            let version = self
                .protocol_version
                .clone()
                .unwrap_or_else(|| "0.3".into());
            all.push(AgentInterface {
                url: url.clone(),
                protocol_binding: self
                    .preferred_transport
                    .clone()
                    .unwrap_or_else(|| JSONRPC_BINDING.into()),
                protocol_version: version.clone(),
            });
            all.extend(self.additional_interfaces.iter().map(|i| AgentInterface {
                url: i.url.clone(),
                protocol_binding: i.transport.clone(),
                protocol_version: version.clone(),
            }));
        }
        all
    }

    /// The JSON-RPC endpoint to use and the version to speak there: the
    /// newest version both sides know. `None` when the card offers no
    /// JSON-RPC endpoint in a version Confab speaks.
    pub fn jsonrpc_endpoint(&self) -> Option<(String, ProtocolVersion)> {
        self.interfaces()
            .into_iter()
            .filter(|i| i.protocol_binding.eq_ignore_ascii_case(JSONRPC_BINDING))
            .filter_map(|i| Some((i.url, ProtocolVersion::parse(&i.protocol_version)?)))
            .max_by_key(|(_, version)| *version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_v1_card_offering_both_versions_is_spoken_to_in_v1() {
        let card: AgentCard = serde_json::from_value(json!({
            "name": "math", "description": "d", "version": "1",
            "supportedInterfaces": [
                {"url": "http://a/v03", "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
                {"url": "http://a/", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
                {"url": "a:50051", "protocolBinding": "GRPC", "protocolVersion": "1.0"}
            ],
            "capabilities": {"streaming": true},
            "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
            "skills": []
        }))
        .unwrap();
        assert_eq!(
            card.jsonrpc_endpoint(),
            Some(("http://a/".into(), ProtocolVersion::V1_0))
        );
    }

    #[test]
    fn the_v03_sample_card_of_the_specification_is_spoken_to_in_v03() {
        // Section 5.7 of the v0.3 specification, trimmed to the fields Confab reads.
        let card: AgentCard = serde_json::from_value(json!({
            "protocolVersion": "0.3.0",
            "name": "GeoSpatial Route Planner Agent",
            "description": "Provides advanced route planning.",
            "url": "https://georoute-agent.example.com/a2a/v1",
            "preferredTransport": "JSONRPC",
            "additionalInterfaces": [
                {"url": "https://georoute-agent.example.com/a2a/v1", "transport": "JSONRPC"},
                {"url": "https://georoute-agent.example.com/a2a/grpc", "transport": "GRPC"}
            ],
            "version": "1.2.0",
            "capabilities": {"streaming": true, "pushNotifications": true, "stateTransitionHistory": false},
            "defaultInputModes": ["application/json", "text/plain"],
            "defaultOutputModes": ["application/json", "image/png"],
            "skills": [{"id": "route-optimizer-traffic", "name": "Traffic-Aware Route Optimizer",
                        "description": "Calculates the optimal driving route.", "tags": ["maps"]}]
        }))
        .unwrap();
        assert_eq!(
            card.jsonrpc_endpoint(),
            Some((
                "https://georoute-agent.example.com/a2a/v1".into(),
                ProtocolVersion::V0_3
            ))
        );
    }

    #[test]
    fn a_card_with_only_unknown_versions_has_no_endpoint() {
        let card: AgentCard = serde_json::from_value(json!({
            "name": "old", "description": "d", "version": "1",
            "url": "http://a/", "protocolVersion": "0.2.5"
        }))
        .unwrap();
        assert_eq!(card.jsonrpc_endpoint(), None);
    }
}
