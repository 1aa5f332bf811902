//! Agent cards served at `/.well-known/agent-card.json` (and the legacy
//! `/.well-known/agent.json`).
//!
//! One card for clients of both generations: `supportedInterfaces` lists the
//! JSON-RPC endpoint once per version it speaks (v1.0 clients pick from it),
//! and the v0.3 fields `url`, `preferredTransport` and `protocolVersion`
//! point v0.3 clients at the same endpoint. Its security fields, in both
//! versions' shapes, say that every call needs `Authorization: Bearer`
//! ([`crate::auth`]).

use confab_protocol::a2a::{
    AgentCapabilities, AgentCard, AgentInterface, AgentSkill, JSONRPC_BINDING, ProtocolVersion,
};

use crate::kind::AgentKind;

pub fn card(kind: AgentKind, base_url: &str) -> AgentCard {
    let (name, description, skills) = match kind {
        AgentKind::Math => (
            "math",
            "Answers arithmetic questions with a calculator tool.",
            vec![AgentSkill {
                id: "calculate".into(),
                name: "Calculator".into(),
                description: "Evaluates arithmetic expressions.".into(),
                tags: vec!["math".into(), "arithmetic".into(), "calculator".into()],
                examples: vec!["What is 12 * (3 + 4)?".into()],
            }],
        ),
        AgentKind::Text => (
            "text",
            "Counts words and changes the case or order of a text.",
            vec![AgentSkill {
                id: "text-tools".into(),
                name: "Text tools".into(),
                description: "Word count, upper case, lower case, reverse.".into(),
                tags: vec![
                    "text".into(),
                    "words".into(),
                    "uppercase".into(),
                    "lowercase".into(),
                    "reverse".into(),
                ],
                examples: vec![
                    "Count the words in: the quick brown fox".into(),
                    "Uppercase: hello".into(),
                ],
            }],
        ),
        AgentKind::Tree => (
            "tree",
            "Edits the conversation's tree of nodes and returns the change as a JSON Patch.",
            vec![AgentSkill {
                id: "tree-edit".into(),
                name: "Tree editing".into(),
                description: "Adds, removes, renames and moves nodes of the conversation's tree; \
                    the change comes back as RFC 6902 ops in a data part {\"tree_patch\": [...]}."
                    .into(),
                tags: vec![
                    "tree".into(),
                    "nodes".into(),
                    "outline".into(),
                    "json-patch".into(),
                ],
                examples: vec![
                    "add node Fruits under root".into(),
                    "rename node fruits to Produce".into(),
                    "move node apples under veggies".into(),
                    "remove node fruits".into(),
                ],
            }],
        ),
    };
    let url = format!("{}/", base_url.trim_end_matches('/'));
    let mut card = AgentCard {
        name: name.into(),
        description: description.into(),
        supported_interfaces: ProtocolVersion::ALL
            .iter()
            .map(|version| AgentInterface {
                url: url.clone(),
                protocol_binding: JSONRPC_BINDING.into(),
                protocol_version: version.as_str().into(),
            })
            .collect(),
        version: env!("CARGO_PKG_VERSION").into(),
        capabilities: AgentCapabilities {
            streaming: Some(true),
            push_notifications: Some(false),
        },
        default_input_modes: vec!["text/plain".into()],
        default_output_modes: vec!["text/plain".into(), "application/json".into()],
        skills,
        url: Some(url),
        preferred_transport: Some(JSONRPC_BINDING.into()),
        // v0.3 cards carry the full version number.
        protocol_version: Some("0.3.0".into()),
        additional_interfaces: Vec::new(),
        security_schemes: Default::default(),
        security_requirements: Vec::new(),
        security: Vec::new(),
    };
    crate::auth::declare(&mut card);
    card
}
