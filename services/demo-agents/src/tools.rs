//! The tools each agent offers its LLM (OpenAI tools API), and running them.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::agent::AgentKind;
use crate::tree::{TreeError, WorkingTree};

/// Longest expression the calculator evaluates; longer ones are refused.
const MAX_EXPRESSION_CHARS: usize = 200;

/// One function tool: its parameters are strings, `(name, about, required)`.
fn function(name: &str, description: &str, parameters: &[(&str, &str, bool)]) -> Value {
    let properties: serde_json::Map<String, Value> = parameters
        .iter()
        .map(|(parameter, about, _)| {
            (
                (*parameter).to_owned(),
                json!({"type": "string", "description": about}),
            )
        })
        .collect();
    let required: Vec<&str> = parameters
        .iter()
        .filter(|(_, _, required)| *required)
        .map(|(parameter, _, _)| *parameter)
        .collect();
    json!({"type": "function", "function": {
        "name": name,
        "description": description,
        "parameters": {"type": "object", "properties": properties, "required": required}
    }})
}

/// The `tools` of a chat-completion request for this agent.
pub fn definitions(kind: AgentKind) -> Vec<Value> {
    match kind {
        AgentKind::Math => vec![function(
            "calculator",
            "Evaluates an arithmetic expression (+ - * / % ^ and parentheses).",
            &[("expression", "the expression, e.g. 12 * (3 + 4)", true)],
        )],
        AgentKind::Text => ["word_count", "uppercase", "lowercase", "reverse"]
            .into_iter()
            .map(|name| {
                function(
                    name,
                    &format!("{name} of a text"),
                    &[("text", "the text", true)],
                )
            })
            .collect(),
        AgentKind::Tree => vec![
            function(
                "add_node",
                "Adds a node as the last child of a parent node. Without an id, the id is the label in lower case with dashes between words (Red Apples → red-apples).",
                &[
                    ("parent_id", "id of the parent node, e.g. root", true),
                    ("id", "id of the new node; optional", false),
                    ("label", "label of the new node", true),
                ],
            ),
            function(
                "remove_node",
                "Removes a node and every node under it. The root cannot be removed.",
                &[("id", "id of the node to remove", true)],
            ),
            function(
                "rename_node",
                "Gives a node a new label; its id stays the same.",
                &[
                    ("id", "id of the node to rename", true),
                    ("label", "the new label", true),
                ],
            ),
            function(
                "move_node",
                "Moves a node, with every node under it, to the end of another node's children.",
                &[
                    ("id", "id of the node to move", true),
                    ("new_parent_id", "id of its new parent", true),
                ],
            ),
        ],
    }
}

/// Whether `kind` offers the tool `name`: a model that calls another tool
/// is told there is none, rather than reaching another agent's tools.
fn offers(kind: AgentKind, name: &str) -> bool {
    definitions(kind)
        .iter()
        .any(|tool| tool["function"]["name"] == name)
}

#[derive(Deserialize)]
struct AddNode {
    parent_id: String,
    #[serde(default)]
    id: Option<String>,
    label: String,
}

#[derive(Deserialize)]
struct NodeId {
    id: String,
}

#[derive(Deserialize)]
struct RenameNode {
    id: String,
    label: String,
}

#[derive(Deserialize)]
struct MoveNode {
    id: String,
    new_parent_id: String,
}

/// Runs a tool call of agent `kind`; the result (or the error, for the
/// model to read) as text. Tree tools edit `tree`, the task's working copy.
pub fn run(kind: AgentKind, name: &str, arguments: &str, tree: &mut WorkingTree) -> String {
    if !offers(kind, name) {
        return format!("error: no tool named {name}");
    }
    let arguments: Value = match serde_json::from_str(arguments) {
        Ok(value) => value,
        Err(err) => return format!("error: the arguments are not JSON: {err}"),
    };
    let text = |key: &str| {
        arguments
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    match name {
        "calculator" => calculate(&text("expression")),
        "word_count" => text("text").split_whitespace().count().to_string(),
        "uppercase" => text("text").to_uppercase(),
        "lowercase" => text("text").to_lowercase(),
        "reverse" => text("text").chars().rev().collect(),
        "add_node" => edit(name, arguments, |a: AddNode| {
            tree.add_node(&a.parent_id, a.id.as_deref(), &a.label)
        }),
        "remove_node" => edit(name, arguments, |a: NodeId| tree.remove_node(&a.id)),
        "rename_node" => edit(name, arguments, |a: RenameNode| {
            tree.rename_node(&a.id, &a.label)
        }),
        "move_node" => edit(name, arguments, |a: MoveNode| {
            tree.move_node(&a.id, &a.new_parent_id)
        }),
        other => format!("error: no tool named {other}"),
    }
}

/// A tree edit from its arguments, its outcome as the tool's text.
fn edit<A: serde::de::DeserializeOwned>(
    name: &str,
    arguments: Value,
    apply: impl FnOnce(A) -> Result<String, TreeError>,
) -> String {
    match serde_json::from_value(arguments) {
        Err(err) => format!("error: invalid arguments for {name}: {err}"),
        Ok(arguments) => match apply(arguments) {
            Ok(done) => done,
            Err(err) => format!("error: {err}"),
        },
    }
}

/// Evaluates arithmetic with evalexpr; whole numbers print without a point.
pub fn calculate(expression: &str) -> String {
    if expression.chars().count() > MAX_EXPRESSION_CHARS {
        return format!("error: expressions are limited to {MAX_EXPRESSION_CHARS} characters");
    }
    match evalexpr::eval(expression) {
        Ok(evalexpr::Value::Int(n)) => n.to_string(),
        Ok(evalexpr::Value::Float(x)) if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 => {
            format!("{x:.0}")
        }
        Ok(evalexpr::Value::Float(x)) => x.to_string(),
        Ok(other) => format!("error: {expression} is not a number ({other})"),
        Err(err) => format!("error: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calculator_evaluates_arithmetic() {
        assert_eq!(calculate("6 * 7"), "42");
        assert_eq!(calculate("12 * (3 + 4)"), "84");
        assert_eq!(calculate("2 ^ 10"), "1024");
        assert_eq!(calculate("7 / 2.0"), "3.5");
        assert!(calculate("1 +").starts_with("error"));
        assert!(calculate(&"1+".repeat(150)).starts_with("error"));
    }

    fn run_text(name: &str, arguments: &str) -> String {
        run(
            AgentKind::Text,
            name,
            arguments,
            &mut WorkingTree::new(Value::Null),
        )
    }

    #[test]
    fn text_tools_work_on_their_argument() {
        assert_eq!(run_text("word_count", r#"{"text": "one two  three"}"#), "3");
        assert_eq!(run_text("uppercase", r#"{"text": "Confab"}"#), "CONFAB");
        assert_eq!(run_text("reverse", r#"{"text": "abc"}"#), "cba");
        assert!(run_text("nope", "{}").starts_with("error"));
        assert!(run_text("word_count", "not json").starts_with("error"));
    }

    #[test]
    fn an_agent_runs_only_the_tools_it_offers() {
        let mut tree = WorkingTree::new(Value::Null);
        let said = run(
            AgentKind::Math,
            "add_node",
            r#"{"parent_id": "root", "label": "Fruits"}"#,
            &mut tree,
        );
        assert_eq!(said, "error: no tool named add_node");
        assert!(tree.patch().is_empty());
        assert!(run_text("calculator", r#"{"expression": "1"}"#).starts_with("error"));
    }

    #[test]
    fn tree_tools_edit_the_working_tree_and_report_refusals_as_errors() {
        let mut tree = WorkingTree::new(Value::Null);
        let mut tool =
            |name: &str, arguments: &str| run(AgentKind::Tree, name, arguments, &mut tree);
        assert_eq!(
            tool("add_node", r#"{"parent_id": "root", "label": "Fruits"}"#),
            "added node fruits (Fruits) under root"
        );
        assert_eq!(
            tool(
                "add_node",
                r#"{"parent_id": "fruits", "id": "a1", "label": "Apples"}"#
            ),
            "added node a1 (Apples) under fruits"
        );
        assert_eq!(
            tool("rename_node", r#"{"id": "fruits", "label": "Produce"}"#),
            "renamed node fruits from Fruits to Produce"
        );
        assert_eq!(
            tool("move_node", r#"{"id": "a1", "new_parent_id": "root"}"#),
            "moved node a1 under root"
        );
        assert_eq!(
            tool("remove_node", r#"{"id": "nope"}"#),
            "error: there is no node with id 'nope'"
        );
        assert!(
            tool("rename_node", r#"{"id": "fruits"}"#)
                .starts_with("error: invalid arguments for rename_node: missing field `label`")
        );
        assert_eq!(tree.patch().len(), 4);
    }
}
