//! The tools each agent offers its LLM (OpenAI tools API), and running them.

use serde_json::{Value, json};

use crate::agent::AgentKind;

/// Longest expression the calculator evaluates; longer ones are refused.
const MAX_EXPRESSION_CHARS: usize = 200;

/// The `tools` of a chat-completion request for this agent.
pub fn definitions(kind: AgentKind) -> Vec<Value> {
    let function = |name: &str, description: &str, parameter: &str, about: &str| {
        json!({"type": "function", "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": {parameter: {"type": "string", "description": about}}, "required": [parameter]}
        }})
    };
    match kind {
        AgentKind::Math => vec![function(
            "calculator",
            "Evaluates an arithmetic expression (+ - * / % ^ and parentheses).",
            "expression",
            "the expression, e.g. 12 * (3 + 4)",
        )],
        AgentKind::Text => ["word_count", "uppercase", "lowercase", "reverse"]
            .into_iter()
            .map(|name| function(name, &format!("{name} of a text"), "text", "the text"))
            .collect(),
    }
}

/// Runs a tool call; the result (or the error, for the model to read) as text.
pub fn run(name: &str, arguments: &str) -> String {
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
        other => format!("error: no tool named {other}"),
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

    #[test]
    fn text_tools_work_on_their_argument() {
        assert_eq!(run("word_count", r#"{"text": "one two  three"}"#), "3");
        assert_eq!(run("uppercase", r#"{"text": "Confab"}"#), "CONFAB");
        assert_eq!(run("reverse", r#"{"text": "abc"}"#), "cba");
        assert!(run("nope", "{}").starts_with("error"));
        assert!(run("calculator", "not json").starts_with("error"));
    }
}
