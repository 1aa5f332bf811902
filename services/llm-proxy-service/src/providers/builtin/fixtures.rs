//! The fixtures file: rules that say what the builtin model answers.

use anyhow::Context;
use regex::Regex;
use serde::Deserialize;

/// The demo fixtures, used when no `fixtures` file is configured.
pub(super) const DEMO_FIXTURES: &str = include_str!("../../../../../infra/llm-fixtures/demo.toml");

#[derive(Debug, Deserialize)]
struct FixturesFile {
    #[serde(default)]
    rules: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
struct RuleSpec {
    /// `user` (the last user message) or `tool` (the last message, when it is
    /// a tool result).
    #[serde(default = "default_on")]
    on: String,
    /// Only results of this tool, or of one of these, match (`on = "tool"`).
    #[serde(default)]
    tool: Option<ToolNames>,
    pattern: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCallSpec>,
    /// The model fails with this message after the text (captures expand).
    #[serde(default)]
    fail: Option<String>,
}

/// `tool = "name"` or `tool = ["name", …]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ToolNames {
    One(String),
    Many(Vec<String>),
}

fn default_on() -> String {
    "user".into()
}

#[derive(Debug, Deserialize)]
pub(super) struct ToolCallSpec {
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum On {
    User,
    Tool,
}

#[derive(Debug)]
pub(super) struct Rule {
    pub on: On,
    /// The tools whose results the rule answers; empty: any tool's.
    pub tools: Vec<String>,
    pub pattern: Regex,
    pub text: Option<String>,
    pub tool_calls: Vec<ToolCallSpec>,
    pub fail: Option<String>,
}

pub(super) fn parse_rules(text: &str) -> anyhow::Result<Vec<Rule>> {
    let file: FixturesFile = toml::from_str(text).context("the fixtures file is not valid TOML")?;
    file.rules
        .into_iter()
        .enumerate()
        .map(|(i, spec)| {
            let on = match spec.on.as_str() {
                "user" => On::User,
                "tool" => On::Tool,
                other => anyhow::bail!(
                    "rule {}: `on` must be \"user\" or \"tool\", not {other:?}",
                    i + 1
                ),
            };
            anyhow::ensure!(
                spec.text.is_some() || !spec.tool_calls.is_empty() || spec.fail.is_some(),
                "rule {} has neither text, tool_calls nor fail",
                i + 1
            );
            Ok(Rule {
                on,
                tools: match spec.tool {
                    None => Vec::new(),
                    Some(ToolNames::One(name)) => vec![name],
                    Some(ToolNames::Many(names)) => names,
                },
                pattern: Regex::new(&spec.pattern)
                    .with_context(|| format!("rule {}: bad pattern", i + 1))?,
                text: spec.text,
                tool_calls: spec.tool_calls,
                fail: spec.fail,
            })
        })
        .collect()
}
