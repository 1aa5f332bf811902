//! The call's span as the OpenTelemetry GenAI semantic conventions describe
//! an inference call: what was asked and what answered, and, only when
//! `[telemetry] capture_content = true`, the messages themselves
//! (`gen_ai.system_instructions`, `gen_ai.input.messages`,
//! `gen_ai.output.messages`, in the conventions' JSON shape: a role and a
//! list of typed parts per message, recorded as JSON strings).

use confab_protocol::openai::{ChatMessage, ToolCall};
use serde_json::{Value, json};

use super::record::CallState;

/// Records the answer on the call's span: the model that answered, why it
/// stopped, and (when contents are captured) the answer itself.
pub(super) fn record_response(
    call: &mut CallState,
    model: Option<&str>,
    finish_reason: Option<&str>,
    content: &str,
    tool_calls: &[ToolCall],
) {
    let span = &call.span;
    if let Some(model) = model {
        span.record("gen_ai.response.model", model);
        call.response_model = Some(model.to_owned());
    }
    if let Some(reason) = finish_reason {
        confab_kit::telemetry::set_string_list(span, "gen_ai.response.finish_reasons", &[reason]);
    }
    if confab_kit::telemetry::capture_content() {
        let output = output_messages(content, tool_calls, finish_reason);
        span.record("gen_ai.output.messages", output.to_string().as_str());
    }
}

/// Records the request's messages on the call's span, when contents are
/// captured.
pub(super) fn record_request(span: &tracing::Span, messages: &[ChatMessage]) {
    if !confab_kit::telemetry::capture_content() {
        return;
    }
    let (system, input) = input_messages(messages);
    if let Some(system) = system {
        span.record("gen_ai.system_instructions", system.to_string().as_str());
    }
    span.record("gen_ai.input.messages", input.to_string().as_str());
}

/// The system messages' parts (the conventions' system instructions, apart
/// from the chat history) and the other messages.
fn input_messages(messages: &[ChatMessage]) -> (Option<Value>, Value) {
    let mut system = Vec::new();
    let mut input = Vec::new();
    for message in messages {
        match message.role.as_str() {
            "system" | "developer" => system.push(text_part(&message.text())),
            "tool" => input.push(json!({
                "role": "tool",
                "parts": [{
                    "type": "tool_call_response",
                    "id": message.tool_call_id,
                    "response": message.text(),
                }],
            })),
            role => {
                let mut parts = Vec::new();
                let text = message.text();
                if !text.is_empty() {
                    parts.push(text_part(&text));
                }
                parts.extend(message.tool_calls.iter().flatten().map(tool_call_part));
                input.push(json!({"role": role, "parts": parts}));
            }
        }
    }
    let system = (!system.is_empty()).then_some(Value::Array(system));
    (system, Value::Array(input))
}

/// The answer as one output message (one choice).
fn output_messages(content: &str, tool_calls: &[ToolCall], finish_reason: Option<&str>) -> Value {
    let mut parts = Vec::new();
    if !content.is_empty() {
        parts.push(text_part(content));
    }
    parts.extend(tool_calls.iter().map(tool_call_part));
    // The conventions' names of OpenAI's reasons; an unfinished answer
    // (a broken stream) counts as an error.
    let finish_reason = match finish_reason {
        Some("tool_calls" | "function_call") => "tool_call",
        Some(reason) => reason,
        None => "error",
    };
    json!([{"role": "assistant", "parts": parts, "finish_reason": finish_reason}])
}

fn text_part(content: &str) -> Value {
    json!({"type": "text", "content": content})
}

fn tool_call_part(call: &ToolCall) -> Value {
    // Arguments are a JSON document when the model wrote valid JSON.
    let arguments = serde_json::from_str::<Value>(&call.function.arguments)
        .unwrap_or_else(|_| Value::String(call.function.arguments.clone()));
    json!({
        "type": "tool_call",
        "id": call.id,
        "name": call.function.name,
        "arguments": arguments,
    })
}

#[cfg(test)]
mod tests {
    use confab_protocol::openai::FunctionCall;

    use super::*;

    fn calculator_call() -> ToolCall {
        ToolCall {
            id: "call_1".into(),
            kind: "function".into(),
            function: FunctionCall {
                name: "calculator".into(),
                arguments: r#"{"expression":"6 * 7"}"#.into(),
            },
        }
    }

    #[test]
    fn a_tool_loops_messages_take_the_conventions_shape() {
        let mut assistant = ChatMessage::new("assistant", "");
        assistant.tool_calls = Some(vec![calculator_call()]);
        let mut tool = ChatMessage::new("tool", "42");
        tool.tool_call_id = Some("call_1".into());
        let messages = vec![
            ChatMessage::new("system", "You are a calculator."),
            ChatMessage::new("user", "What is 6 * 7?"),
            assistant,
            tool,
        ];
        let (system, input) = input_messages(&messages);
        assert_eq!(
            system,
            Some(json!([{"type": "text", "content": "You are a calculator."}]))
        );
        assert_eq!(
            input,
            json!([
                {"role": "user", "parts": [{"type": "text", "content": "What is 6 * 7?"}]},
                {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "calculator", "arguments": {"expression": "6 * 7"}}]},
                {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "42"}]},
            ])
        );
    }

    #[test]
    fn an_answer_is_one_output_message_with_the_conventions_finish_reason() {
        assert_eq!(
            output_messages("", &[calculator_call()], Some("tool_calls")),
            json!([{"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "calculator", "arguments": {"expression": "6 * 7"}}], "finish_reason": "tool_call"}])
        );
        assert_eq!(
            output_messages("The answer is 42.", &[], Some("stop")),
            json!([{"role": "assistant", "parts": [{"type": "text", "content": "The answer is 42."}], "finish_reason": "stop"}])
        );
        assert_eq!(
            output_messages("The", &[], None)[0]["finish_reason"],
            "error"
        );
    }
}
