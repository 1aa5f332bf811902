//! A2A protocol types (JSON-RPC binding), as chat-service and the demo agents
//! exchange them (DESIGN §8).
//!
//! The v1.0 types ([`model`]) are Confab's one internal model. v0.3 has its
//! own wire types ([`v03`]) that convert to and from it, so the code that
//! runs a task or a turn never looks at which version a peer speaks: only
//! the edge that parses a request or encodes a result does.

pub mod card;
mod codec;
pub mod confab;
pub mod jsonrpc;
pub mod model;
pub mod v03;

pub use card::{
    AgentCapabilities, AgentCard, AgentInterface, AgentSkill, SecurityRequirement, SecurityScheme,
};
pub use jsonrpc::{JsonRpcError, JsonRpcRequest, JsonRpcResponse, error_code};
pub use model::*;

/// The request header (or query parameter) naming the protocol version.
pub const VERSION_HEADER: &str = "A2A-Version";
/// Path of the agent card.
pub const AGENT_CARD_PATH: &str = "/.well-known/agent-card.json";
/// Where agents before v1.0 published their card.
pub const LEGACY_AGENT_CARD_PATH: &str = "/.well-known/agent.json";
/// The protocol binding Confab speaks (as named in cards).
pub const JSONRPC_BINDING: &str = "JSONRPC";

/// A protocol version Confab speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    V0_3,
    V1_0,
}

impl ProtocolVersion {
    /// Newest first: the order a client prefers them in.
    pub const ALL: [ProtocolVersion; 2] = [ProtocolVersion::V1_0, ProtocolVersion::V0_3];

    /// `Major.Minor`, as the header and cards carry it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolVersion::V0_3 => "0.3",
            ProtocolVersion::V1_0 => "1.0",
        }
    }

    /// Reads a version as sent in the `A2A-Version` header or a card. Only
    /// `Major.Minor` counts (the specification says patch numbers must not),
    /// so `0.3.0` is 0.3. An empty value means 0.3, as the specification
    /// requires of agents. `None` for a version Confab does not speak.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if value.is_empty() {
            return Some(ProtocolVersion::V0_3);
        }
        let mut numbers = value.split('.');
        let major = numbers.next()?.parse::<u32>().ok()?;
        let minor = numbers.next().unwrap_or("0").parse::<u32>().ok()?;
        match (major, minor) {
            (0, 3) => Some(ProtocolVersion::V0_3),
            (1, 0) => Some(ProtocolVersion::V1_0),
            _ => None,
        }
    }
}

impl std::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operations Confab uses, whatever their name in a given version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    SendMessage,
    SendStreamingMessage,
    GetTask,
    CancelTask,
    SubscribeToTask,
}

impl Method {
    pub const ALL: [Method; 5] = [
        Method::SendMessage,
        Method::SendStreamingMessage,
        Method::GetTask,
        Method::CancelTask,
        Method::SubscribeToTask,
    ];

    /// The JSON-RPC method name in `version`.
    pub fn name(self, version: ProtocolVersion) -> &'static str {
        let (v1, v03) = match self {
            Method::SendMessage => ("SendMessage", "message/send"),
            Method::SendStreamingMessage => ("SendStreamingMessage", "message/stream"),
            Method::GetTask => ("GetTask", "tasks/get"),
            Method::CancelTask => ("CancelTask", "tasks/cancel"),
            Method::SubscribeToTask => ("SubscribeToTask", "tasks/resubscribe"),
        };
        match version {
            ProtocolVersion::V1_0 => v1,
            ProtocolVersion::V0_3 => v03,
        }
    }

    /// The method a JSON-RPC name stands for, and the version that names it
    /// so (the two versions share no name).
    pub fn parse(name: &str) -> Option<(Method, ProtocolVersion)> {
        Self::ALL.into_iter().find_map(|method| {
            ProtocolVersion::ALL
                .into_iter()
                .find(|&version| method.name(version) == name)
                .map(|version| (method, version))
        })
    }

    /// Whether the method answers with an SSE stream.
    pub fn streams(self) -> bool {
        matches!(self, Method::SendStreamingMessage | Method::SubscribeToTask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_major_and_minor_only() {
        assert_eq!(ProtocolVersion::parse("1.0"), Some(ProtocolVersion::V1_0));
        assert_eq!(ProtocolVersion::parse("1.0.1"), Some(ProtocolVersion::V1_0));
        assert_eq!(ProtocolVersion::parse("0.3.0"), Some(ProtocolVersion::V0_3));
        assert_eq!(ProtocolVersion::parse(""), Some(ProtocolVersion::V0_3));
        assert_eq!(ProtocolVersion::parse("1"), Some(ProtocolVersion::V1_0));
        assert_eq!(ProtocolVersion::parse("0.2.6"), None);
        assert_eq!(ProtocolVersion::parse("2.0"), None);
        assert_eq!(ProtocolVersion::parse("latest"), None);
    }

    #[test]
    fn every_method_has_one_name_per_version() {
        for method in Method::ALL {
            for version in ProtocolVersion::ALL {
                assert_eq!(Method::parse(method.name(version)), Some((method, version)));
            }
        }
        assert_eq!(Method::parse("tasks/list"), None);
    }
}
