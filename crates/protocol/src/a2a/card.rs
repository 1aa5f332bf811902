//! Agent cards: what an agent publishes at `/.well-known/agent-card.json`.
//!
//! One type reads both generations of card. A v1.0 card lists its endpoints
//! in `supportedInterfaces`, each with a binding and a protocol version; a
//! v0.3 card has one `url` with its `preferredTransport`, `protocolVersion`
//! and `additionalInterfaces`. A card may carry both, as the demo agents'
//! cards do, so clients of either generation find an endpoint they speak.
//!
//! Security is declared the same way, in both generations' shapes at once:
//! `securitySchemes` (one field name, two shapes: each scheme carries the
//! v1.0 oneof member and the v0.3 OpenAPI fields side by side, see
//! [`SecurityScheme`]), `securityRequirements` (v1.0) and `security` (v0.3).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{JSONRPC_BINDING, ProtocolVersion};

/// One endpoint of a v1.0 card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AgentInterface {
    pub url: String,
    pub protocol_binding: String,
    pub protocol_version: String,
}

/// One endpoint of a v0.3 card's `additionalInterfaces`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LegacyInterface {
    pub url: String,
    pub transport: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AgentCapabilities {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_notifications: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// HTTP authentication (`Authorization: <scheme> <credentials>`): the
/// `HTTPAuthSecurityScheme` of both versions, which name its fields alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct HttpAuthSecurityScheme {
    /// The HTTP authentication scheme (RFC 7235), e.g. `Bearer`; case does
    /// not matter.
    pub scheme: String,
    /// How a bearer token is formatted (e.g. `JWT`); documentation only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// An API key in a header, query parameter or cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeySecurityScheme {
    /// The header, query parameter or cookie that carries the key.
    pub name: String,
    /// `header`, `query` or `cookie`.
    pub location: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The v1.0 shape of a security scheme: a protobuf oneof, written as an
/// object with exactly one member (`{"httpAuthSecurityScheme": {...}}`).
/// The members Confab does not model (OAuth 2, OpenID Connect, mTLS) read
/// as no v1.0 shape at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SecuritySchemeV1 {
    #[serde(rename = "httpAuthSecurityScheme")]
    HttpAuth(HttpAuthSecurityScheme),
    #[serde(rename = "apiKeySecurityScheme")]
    ApiKey(ApiKeySecurityScheme),
}

/// The v0.3 shape of a security scheme: the OpenAPI 3.0 Security Scheme
/// Object, tagged by `type`. The types Confab does not model (`oauth2`,
/// `openIdConnect`, `mutualTLS`) read as no v0.3 shape at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type")]
pub enum SecuritySchemeV03 {
    #[serde(rename = "http")]
    Http(HttpAuthSecurityScheme),
    #[serde(rename = "apiKey")]
    ApiKey {
        name: String,
        #[serde(rename = "in")]
        location: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
}

/// One entry of a card's `securitySchemes`, in either version's shape or
/// in both at once (the members of one never collide with the other's:
/// v1.0 nests under the oneof member's name, v0.3 is flat). Each reader
/// takes its own shape and skips the other's fields as unknown, as both
/// versions' readers do with the other's card fields. A scheme Confab does
/// not model reads as `v1: None, v03: None` rather than failing the card:
/// chat-service reads cards it did not write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecurityScheme {
    #[serde(flatten, default)]
    pub v1: Option<SecuritySchemeV1>,
    #[serde(flatten, default)]
    pub v03: Option<SecuritySchemeV03>,
}

impl SecurityScheme {
    /// `Authorization: Bearer <token>`, declared in both versions' shapes.
    pub fn bearer(description: impl Into<String>) -> Self {
        let description = Some(description.into());
        Self {
            v1: Some(SecuritySchemeV1::HttpAuth(HttpAuthSecurityScheme {
                scheme: "Bearer".into(),
                bearer_format: None,
                description: description.clone(),
            })),
            // OpenAPI spells the scheme in lower case.
            v03: Some(SecuritySchemeV03::Http(HttpAuthSecurityScheme {
                scheme: "bearer".into(),
                bearer_format: None,
                description,
            })),
        }
    }

    /// The HTTP authentication scheme this declares, whichever shape it came in.
    pub fn http_scheme(&self) -> Option<&str> {
        match (&self.v1, &self.v03) {
            (Some(SecuritySchemeV1::HttpAuth(http)), _)
            | (_, Some(SecuritySchemeV03::Http(http))) => Some(&http.scheme),
            _ => None,
        }
    }
}

/// The scopes one scheme of a requirement needs (v1.0 `StringList`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StringList {
    #[serde(default)]
    pub list: Vec<String>,
}

/// v1.0: one way to satisfy a card's security, every scheme of it together
/// (the requirements of a card are alternatives).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecurityRequirement {
    #[serde(default)]
    pub schemes: BTreeMap<String, StringList>,
}

/// v0.3 (OpenAPI): scheme name → required scopes.
pub type LegacySecurityRequirement = BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Both versions: the schemes the requirements name, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub security_schemes: BTreeMap<String, SecurityScheme>,
    /// v1.0: how to authenticate; any one requirement will do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_requirements: Vec<SecurityRequirement>,
    /// v0.3: the same as `securityRequirements`, in the OpenAPI shape.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security: Vec<LegacySecurityRequirement>,
}

impl AgentCard {
    /// Declares that every call needs the scheme `name`, in both versions'
    /// fields.
    pub fn require(&mut self, name: &str, scheme: SecurityScheme) {
        self.security_schemes.insert(name.to_owned(), scheme);
        self.security_requirements.push(SecurityRequirement {
            schemes: BTreeMap::from([(name.to_owned(), StringList::default())]),
        });
        self.security
            .push(BTreeMap::from([(name.to_owned(), Vec::new())]));
    }

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

    #[test]
    fn a_bearer_scheme_is_written_in_both_versions_shapes() {
        let mut card: AgentCard = serde_json::from_value(json!({
            "name": "math", "description": "d", "version": "1"
        }))
        .unwrap();
        card.require("bearer", SecurityScheme::bearer("the token"));
        let written = serde_json::to_value(&card).unwrap();
        assert_eq!(
            written["securitySchemes"],
            json!({"bearer": {
                "httpAuthSecurityScheme": {"scheme": "Bearer", "description": "the token"},
                "type": "http", "scheme": "bearer", "description": "the token"
            }})
        );
        assert_eq!(
            written["securityRequirements"],
            json!([{"schemes": {"bearer": {"list": []}}}])
        );
        assert_eq!(written["security"], json!([{"bearer": []}]));
        let read: AgentCard = serde_json::from_value(written).unwrap();
        assert_eq!(read, card);
        assert_eq!(
            read.security_schemes["bearer"].http_scheme(),
            Some("Bearer")
        );
    }

    #[test]
    fn schemes_of_one_version_or_unmodelled_ones_do_not_fail_the_card() {
        let card: AgentCard = serde_json::from_value(json!({
            "name": "other", "description": "d", "version": "1",
            "securitySchemes": {
                "v03": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "v1": {"apiKeySecurityScheme": {"name": "X-Key", "location": "header"}},
                "oauth": {"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": "https://t", "scopes": {}}}},
                "mtls": {"mtlsSecurityScheme": {}}
            },
            "security": [{"v03": []}, {"oauth": ["read"]}],
            "securityRequirements": [{"schemes": {"v1": {"list": []}}}]
        }))
        .unwrap();
        let schemes = &card.security_schemes;
        assert_eq!(schemes["v03"].http_scheme(), Some("bearer"));
        assert_eq!(schemes["v03"].v1, None);
        assert!(
            matches!(&schemes["v1"].v1, Some(SecuritySchemeV1::ApiKey(key)) if key.name == "X-Key")
        );
        assert_eq!(schemes["oauth"], SecurityScheme::default());
        assert_eq!(schemes["mtls"], SecurityScheme::default());
        assert_eq!(card.security[1]["oauth"], vec!["read".to_owned()]);
        assert!(card.security_requirements[0].schemes.contains_key("v1"));
    }
}
