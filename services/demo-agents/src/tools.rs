//! The tools each agent offers its LLM (OpenAI tools API), and running them.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::kind::AgentKind;
use crate::tree::{TreeError, WorkingTree};

/// Longest expression the calculator evaluates; longer ones are refused.
const MAX_EXPRESSION_CHARS: usize = 200;

/// One tool: what the model is told about it, and what running it does.
struct Tool {
    name: &'static str,
    description: &'static str,
    /// The agent that offers it; a model that calls another agent's tool is
    /// told there is none.
    offered_by: AgentKind,
    /// The JSON Schema of its arguments, derived from their struct.
    parameters: fn() -> Value,
    /// Runs it on its arguments; the result (or the error, for the model to
    /// read) as text. Tree tools edit the task's working tree.
    run: fn(&str, Value, &mut WorkingTree) -> String,
}

/// Every agent's tools.
const TOOLS: &[Tool] = &[
    Tool {
        name: "calculator",
        description: "Evaluates an arithmetic expression (+ - * / % ^ and parentheses).",
        offered_by: AgentKind::Math,
        parameters: schema::<Expression>,
        run: |name, arguments, _| {
            with(name, arguments, |a: Expression| {
                Ok(calculate(&a.expression))
            })
        },
    },
    Tool {
        name: "word_count",
        description: "word_count of a text",
        offered_by: AgentKind::Text,
        parameters: schema::<Text>,
        run: |name, arguments, _| {
            with(name, arguments, |a: Text| {
                Ok(a.text.split_whitespace().count().to_string())
            })
        },
    },
    Tool {
        name: "uppercase",
        description: "uppercase of a text",
        offered_by: AgentKind::Text,
        parameters: schema::<Text>,
        run: |name, arguments, _| with(name, arguments, |a: Text| Ok(a.text.to_uppercase())),
    },
    Tool {
        name: "lowercase",
        description: "lowercase of a text",
        offered_by: AgentKind::Text,
        parameters: schema::<Text>,
        run: |name, arguments, _| with(name, arguments, |a: Text| Ok(a.text.to_lowercase())),
    },
    Tool {
        name: "reverse",
        description: "reverse of a text",
        offered_by: AgentKind::Text,
        parameters: schema::<Text>,
        run: |name, arguments, _| {
            with(name, arguments, |a: Text| {
                Ok(a.text.chars().rev().collect())
            })
        },
    },
    Tool {
        name: "add_node",
        description: "Adds a node as the last child of a parent node. Without an id, the id is the label in lower case with dashes between words (Red Apples → red-apples).",
        offered_by: AgentKind::Tree,
        parameters: schema::<AddNode>,
        run: |name, arguments, tree| {
            with(name, arguments, |a: AddNode| {
                tree.add_node(&a.parent_id, a.id.as_deref(), &a.label)
            })
        },
    },
    Tool {
        name: "remove_node",
        description: "Removes a node and every node under it. The root cannot be removed.",
        offered_by: AgentKind::Tree,
        parameters: schema::<RemoveNode>,
        run: |name, arguments, tree| with(name, arguments, |a: RemoveNode| tree.remove_node(&a.id)),
    },
    Tool {
        name: "rename_node",
        description: "Gives a node a new label; its id stays the same.",
        offered_by: AgentKind::Tree,
        parameters: schema::<RenameNode>,
        run: |name, arguments, tree| {
            with(name, arguments, |a: RenameNode| {
                tree.rename_node(&a.id, &a.label)
            })
        },
    },
    Tool {
        name: "move_node",
        description: "Moves a node, with every node under it, to the end of another node's children.",
        offered_by: AgentKind::Tree,
        parameters: schema::<MoveNode>,
        run: |name, arguments, tree| {
            with(name, arguments, |a: MoveNode| {
                tree.move_node(&a.id, &a.new_parent_id)
            })
        },
    },
];

#[derive(Deserialize, JsonSchema)]
struct Expression {
    /// the expression, e.g. 12 * (3 + 4)
    expression: String,
}

#[derive(Deserialize, JsonSchema)]
struct Text {
    /// the text
    text: String,
}

#[derive(Deserialize, JsonSchema)]
struct AddNode {
    /// id of the parent node, e.g. root
    parent_id: String,
    /// id of the new node; optional
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    id: Option<String>,
    /// label of the new node
    label: String,
}

#[derive(Deserialize, JsonSchema)]
struct RemoveNode {
    /// id of the node to remove
    id: String,
}

#[derive(Deserialize, JsonSchema)]
struct RenameNode {
    /// id of the node to rename
    id: String,
    /// the new label
    label: String,
}

#[derive(Deserialize, JsonSchema)]
struct MoveNode {
    /// id of the node to move
    id: String,
    /// id of its new parent
    new_parent_id: String,
}

/// The schema of `A` inline, as the OpenAI tools API takes `parameters`:
/// no `$schema` or `title`.
fn schema<A: JsonSchema>() -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.meta_schema = None;
    settings.inline_subschemas = true;
    let mut schema = settings
        .into_generator()
        .into_root_schema_for::<A>()
        .to_value();
    if let Some(object) = schema.as_object_mut() {
        object.remove("title");
    }
    schema
}

/// The `tools` of a chat-completion request for this agent.
pub fn definitions(kind: AgentKind) -> Vec<Value> {
    offered(kind)
        .map(|tool| {
            json!({"type": "function", "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": (tool.parameters)(),
            }})
        })
        .collect()
}

fn offered(kind: AgentKind) -> impl Iterator<Item = &'static Tool> {
    TOOLS.iter().filter(move |tool| tool.offered_by == kind)
}

/// Runs a tool call of agent `kind`; the result (or the error, for the
/// model to read) as text. Tree tools edit `tree`, the task's working copy.
pub fn run(kind: AgentKind, name: &str, arguments: &str, tree: &mut WorkingTree) -> String {
    let Some(tool) = offered(kind).find(|tool| tool.name == name) else {
        return format!("error: no tool named {name}");
    };
    match serde_json::from_str(arguments) {
        Ok(arguments) => (tool.run)(name, arguments, tree),
        Err(err) => format!("error: the arguments are not JSON: {err}"),
    }
}

/// A tool's arguments parsed into `A` and `apply`'d; the outcome as the
/// tool's text.
fn with<A: serde::de::DeserializeOwned>(
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
        assert_eq!(
            run_text("word_count", "{}"),
            "error: invalid arguments for word_count: missing field `text`"
        );
    }

    #[test]
    fn a_tools_parameters_are_its_argument_struct_and_optional_fields_are_not_required() {
        let tools = definitions(AgentKind::Tree);
        let names: Vec<&str> = tools
            .iter()
            .map(|tool| tool["function"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["add_node", "remove_node", "rename_node", "move_node"]
        );
        assert_eq!(
            tools[0]["function"]["parameters"],
            serde_json::json!({
                "type": "object",
                "properties": {
                    "parent_id": {"type": "string", "description": "id of the parent node, e.g. root"},
                    "id": {"type": "string", "description": "id of the new node; optional"},
                    "label": {"type": "string", "description": "label of the new node"}
                },
                "required": ["parent_id", "label"]
            })
        );
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
