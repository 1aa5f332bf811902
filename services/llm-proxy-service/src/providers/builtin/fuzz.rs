//! Fuzzing the builtin model's fixtures file and its answers: a fixtures
//! file that is almost right is refused with an error, never a panic, and
//! one that loads answers any conversation.

use std::time::Duration;

use confab_kit::fuzz;
use confab_protocol::openai::{ChatCompletionRequest, ChatMessage};
use proptest::prelude::*;
use serde_json::json;

use super::Builtin;
use super::fixtures::{DEMO_FIXTURES, parse_rules};
use super::tests::empty_request;

#[test]
fn fuzz_fixtures_files_load_or_are_refused_and_answer_anything() {
    let files = prop_oneof![
        3 => fuzz::mutated(vec![DEMO_FIXTURES.to_owned()]),
        1 => any::<String>(),
    ];
    let user_texts = prop_oneof![
        fuzz::mutated(vec![
            "What is 12 * (3 + 4)?".to_owned(),
            "Count the words in: the quick brown fox".to_owned(),
            "Uppercase: hello".to_owned(),
            "add a node called Fruits".to_owned(),
        ]),
        any::<String>(),
    ];
    fuzz::fuzz(
        (files, user_texts, any::<String>()),
        |(file, user, tool_result)| {
            let Ok(rules) = parse_rules(&file) else {
                return Ok(());
            };
            let model = Builtin {
                rules,
                first_chunk_delay: Duration::ZERO,
                chunk_delay: Duration::ZERO,
            };
            let tools = ["calculator", "word_count", "uppercase", "add_node"]
                .map(|name| json!({"type": "function", "function": {"name": name}}));
            let mut request = ChatCompletionRequest {
                messages: vec![ChatMessage::new("user", user)],
                tools: Some(tools.to_vec()),
                ..empty_request("builtin")
            };
            // Answering is the property: no rule, capture or substitution
            // makes it panic.
            model.answer(&request);
            let mut result = ChatMessage::new("tool", tool_result);
            result.tool_call_id = Some("call-1".into());
            request.messages.push(result);
            model.answer(&request);
            Ok(())
        },
    );
}
