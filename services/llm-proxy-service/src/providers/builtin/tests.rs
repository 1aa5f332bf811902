use std::time::Duration;

use confab_protocol::openai::{ChatCompletionChunk, ChatCompletionRequest, ChatMessage, ToolCall};
use futures_util::StreamExt;
use serde_json::{Map, Value};

use super::fixtures::{DEMO_FIXTURES, parse_rules};
use super::stream::stream_chunks;
use super::{Builtin, Start, UpstreamError, tokenize};

/// A request with no messages, to build test requests from.
pub(super) fn empty_request(model: &str) -> ChatCompletionRequest {
    ChatCompletionRequest {
        model: model.to_owned(),
        messages: Vec::new(),
        stream: None,
        stream_options: None,
        tools: None,
        extra: Map::new(),
    }
}

fn model(fixtures: &str) -> Builtin {
    Builtin {
        rules: parse_rules(fixtures).unwrap(),
        first_chunk_delay: Duration::ZERO,
        chunk_delay: Duration::ZERO,
    }
}

fn request(messages: Vec<ChatMessage>) -> ChatCompletionRequest {
    ChatCompletionRequest {
        messages,
        tools: Some(vec![
            serde_json::json!({"type": "function", "function": {"name": "calculator"}}),
        ]),
        ..empty_request("builtin")
    }
}

const FIXTURES: &str = r#"
    [[rules]]
    pattern = '(?i)what is (?P<a>\d+) \+ (?P<b>\d+)'
    tool_calls = [{ name = "calculator", arguments = '{"expression": "${a} + ${b}"}' }]

    [[rules]]
    on = "tool"
    tool = "calculator"
    pattern = '^(.*)$'
    text = "The answer is $1."

    [[rules]]
    pattern = '(?i)^hello'
    text = "Hello! How can I help?"
"#;

#[test]
fn tokens_concatenate_back_to_the_text() {
    for text in ["", "one", "two words", "  lead and trail  ", "a\nb\tc"] {
        assert_eq!(tokenize(text).concat(), text);
    }
    assert_eq!(tokenize("what is 2+2"), vec!["what", " is", " 2+2"]);
}

#[test]
fn a_matching_rule_answers_with_captures_substituted() {
    let model = model(FIXTURES);
    let answer = model.answer(&request(vec![ChatMessage::new("user", "What is 12 + 30?")]));
    assert!(answer.tokens.is_empty());
    assert_eq!(answer.tool_calls.len(), 1);
    assert_eq!(answer.tool_calls[0].function.name, "calculator");
    assert_eq!(
        answer.tool_calls[0].function.arguments,
        r#"{"expression": "12 + 30"}"#
    );

    let call = answer.tool_calls[0].clone();
    let answer = model.answer(&request(vec![
        ChatMessage::new("user", "What is 12 + 30?"),
        ChatMessage::assistant_tool_calls(vec![call.clone()]),
        ChatMessage::tool_result(&call.id, "42"),
    ]));
    assert_eq!(answer.text(), "The answer is 42.");
    assert!(answer.tool_calls.is_empty());
}

#[test]
fn a_tool_rule_may_answer_the_results_of_several_tools() {
    let model = model(
        r#"
        [[rules]]
        on = "tool"
        tool = ["add_node", "remove_node"]
        pattern = '^(.*)$'
        text = "Done: $1."

        [[rules]]
        on = "tool"
        pattern = '^(.*)$'
        text = "Here it is: $1"
    "#,
    );
    let result_of = |name: &str| {
        let call = ToolCall::function("call_1", name, "{}");
        model
            .answer(&request(vec![
                ChatMessage::new("user", "go"),
                ChatMessage::assistant_tool_calls(vec![call.clone()]),
                ChatMessage::tool_result(&call.id, "ok"),
            ]))
            .text()
    };
    assert_eq!(result_of("add_node"), "Done: ok.");
    assert_eq!(result_of("remove_node"), "Done: ok.");
    assert_eq!(result_of("uppercase"), "Here it is: ok");
}

#[test]
fn a_tool_the_request_does_not_offer_is_never_called() {
    let model = model(FIXTURES);
    let mut request = request(vec![ChatMessage::new("user", "What is 12 + 30?")]);
    request.tools = None;
    let answer = model.answer(&request);
    assert!(answer.tool_calls.is_empty());
    assert_eq!(answer.text(), "What is 12 + 30?");
}

#[test]
fn without_a_matching_rule_the_model_echoes_and_counts_usage() {
    let model = model(FIXTURES);
    let answer = model.answer(&request(vec![
        ChatMessage::new("system", "You are a calculator"),
        ChatMessage::new("user", "what is 2+2"),
    ]));
    assert_eq!(answer.text(), "what is 2+2");
    assert_eq!(answer.usage.prompt_tokens, 4 + 3);
    assert_eq!(answer.usage.completion_tokens, 3);
}

#[test]
fn streamed_tool_calls_come_in_pieces_that_join_up() {
    let model = model(FIXTURES);
    let answer = model.answer(&request(vec![ChatMessage::new("user", "what is 1 + 2")]));
    let chunks: Vec<ChatCompletionChunk> = stream_chunks("id", "builtin", &answer)
        .iter()
        .map(|c| serde_json::from_str(c).unwrap())
        .collect();
    let arguments: String = chunks
        .iter()
        .flat_map(|c| c.choices.iter())
        .filter_map(|c| c.delta.tool_calls.as_ref())
        .flatten()
        .filter_map(|d| d.function.as_ref()?.arguments.clone())
        .collect();
    assert_eq!(arguments, r#"{"expression": "1 + 2"}"#);
    let finish: Vec<_> = chunks
        .iter()
        .flat_map(|c| c.choices.iter())
        .filter_map(|c| c.finish_reason.clone())
        .collect();
    assert_eq!(finish, ["tool_calls"]);
    assert!(chunks.last().unwrap().usage.is_some());
}

#[test]
fn bad_fixtures_are_refused_with_the_rule_number() {
    let err = parse_rules("[[rules]]\npattern = '('\ntext = 'x'\n").unwrap_err();
    assert!(format!("{err:#}").contains("rule 1"));
    let err = parse_rules("[[rules]]\npattern = 'x'\n").unwrap_err();
    assert!(format!("{err:#}").contains("neither text, tool_calls nor fail"));
}

#[tokio::test]
async fn a_failing_rule_streams_its_text_then_breaks_and_refuses_unstreamed() {
    let model = Builtin {
        rules: parse_rules(DEMO_FIXTURES).unwrap(),
        first_chunk_delay: Duration::ZERO,
        chunk_delay: Duration::ZERO,
    };
    let body = serde_json::json!({
        "model": "builtin",
        "messages": [{"role": "user", "content": "Simulate an error: disk full"}],
    });
    let body: ChatCompletionRequest = serde_json::from_value(body).unwrap();
    let Ok(Start::Stream(stream)) = model.start("builtin", &body, true).await else {
        panic!("a failing rule still starts a stream");
    };
    let items: Vec<_> = stream.collect().await;
    let (last, chunks) = items.split_last().unwrap();
    let text: String = chunks
        .iter()
        .map(|c| serde_json::from_str::<ChatCompletionChunk>(c.as_ref().unwrap()).unwrap())
        .flat_map(|c| c.choices)
        .filter_map(|c| c.delta.content)
        .collect();
    assert_eq!(text, "Let me think about that");
    match last {
        Err(UpstreamError::Broken(message)) => {
            assert_eq!(message, "the model broke off (simulated): disk full")
        }
        other => panic!("the stream ends broken, not {other:?}"),
    }

    match model.start("builtin", &body, false).await {
        Err(UpstreamError::Refused { status: 500, body }) => {
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                body["error"]["message"],
                "the model broke off (simulated): disk full"
            );
        }
        Err(other) => panic!("an HTTP 500, not {other:?}"),
        Ok(_) => panic!("an HTTP 500, not an answer"),
    }
}

#[test]
fn the_demo_fixtures_parse() {
    assert!(!parse_rules(DEMO_FIXTURES).unwrap().is_empty());
}

fn offering(tools: &[&str], messages: Vec<ChatMessage>) -> ChatCompletionRequest {
    ChatCompletionRequest {
        messages,
        tools: Some(
            tools
                .iter()
                .map(|name| serde_json::json!({"type": "function", "function": {"name": name}}))
                .collect(),
        ),
        ..empty_request("builtin")
    }
}

const TREE_TOOLS: [&str; 4] = ["add_node", "remove_node", "rename_node", "move_node"];

#[test]
fn the_demo_fixtures_drive_the_tree_tools_only_when_they_are_offered() {
    let model = model(DEMO_FIXTURES);
    let calls = |text: &str| -> Vec<(String, String)> {
        model
            .answer(&offering(&TREE_TOOLS, vec![ChatMessage::new("user", text)]))
            .tool_calls
            .into_iter()
            .map(|c| (c.function.name, c.function.arguments))
            .collect()
    };
    let one = |name: &str, arguments: &str| vec![(name.to_owned(), arguments.to_owned())];
    assert_eq!(
        calls("add node Fruits under root"),
        one("add_node", r#"{"parent_id": "root", "label": "Fruits"}"#)
    );
    assert_eq!(
        calls("Add node Red Apples to fruits."),
        one(
            "add_node",
            r#"{"parent_id": "fruits", "label": "Red Apples"}"#
        )
    );
    assert_eq!(
        calls("add node Fruits"),
        one("add_node", r#"{"parent_id": "root", "label": "Fruits"}"#)
    );
    assert_eq!(
        calls("add node Fruits with child Apples under root"),
        vec![
            (
                "add_node".to_owned(),
                r#"{"parent_id": "root", "label": "Fruits"}"#.to_owned()
            ),
            (
                "add_node".to_owned(),
                r#"{"parent_id": "Fruits", "label": "Apples"}"#.to_owned()
            ),
        ]
    );
    assert_eq!(
        calls("rename node fruits to Produce"),
        one("rename_node", r#"{"id": "fruits", "label": "Produce"}"#)
    );
    assert_eq!(
        calls("remove node fruits"),
        one("remove_node", r#"{"id": "fruits"}"#)
    );
    assert_eq!(
        calls("move node apples under veggies"),
        one(
            "move_node",
            r#"{"id": "apples", "new_parent_id": "veggies"}"#
        )
    );

    // The text agent offers other tools: the same words are echoed.
    let answer = model.answer(&offering(
        &["word_count", "uppercase", "lowercase", "reverse"],
        vec![ChatMessage::new("user", "remove node fruits")],
    ));
    assert!(answer.tool_calls.is_empty());
    assert_eq!(answer.text(), "remove node fruits");
}

#[test]
fn the_demo_fixtures_answer_tree_results_and_other_results_apart() {
    let model = model(DEMO_FIXTURES);
    let reply = |tools: &[&str], tool: &str, result: &str| {
        let call = ToolCall::function("call_1", tool, "{}");
        model
            .answer(&offering(
                tools,
                vec![
                    ChatMessage::new("user", "go"),
                    ChatMessage::assistant_tool_calls(vec![call.clone()]),
                    ChatMessage::tool_result(&call.id, result),
                ],
            ))
            .text()
    };
    assert_eq!(
        reply(
            &TREE_TOOLS,
            "add_node",
            "added node fruits (Fruits) under root"
        ),
        "Done: added node fruits (Fruits) under root."
    );
    assert_eq!(
        reply(
            &TREE_TOOLS,
            "remove_node",
            "error: there is no node with id 'x'"
        ),
        "I could not change the tree: there is no node with id 'x'."
    );
    assert_eq!(
        reply(&["uppercase"], "uppercase", "ERROR: LOUD"),
        "Here it is: ERROR: LOUD"
    );
    assert_eq!(
        reply(&["word_count"], "word_count", "3"),
        "That text has 3 words."
    );
    assert_eq!(
        reply(&["calculator"], "calculator", "42"),
        "The answer is 42."
    );
}
