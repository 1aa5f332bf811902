//! The builtin model: deterministic, offline, documented (DESIGN §10).
//!
//! It answers from a fixtures file of rules (see `infra/llm-fixtures/demo.toml`,
//! compiled in as the default): the first rule whose regex matches the last
//! user message, or the last tool result, answers with its text and/or tool
//! calls, `$1`/`${name}` replaced by the regex's captures. With no matching
//! rule it echoes the last user message. A rule may also `fail`: the model
//! then breaks off after its text, as a provider whose connection drops mid-
//! answer (streamed), or answers HTTP 500 (not streamed), so the error paths
//! can be seen offline too. Usage is counted per token (a word with its
//! leading whitespace). It can wait before the first chunk and
//! between chunks, so benchmarks see realistic timing, and it streams through
//! the same code a real provider does.

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use confab_protocol::openai::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatMessage, Choice, ChunkChoice,
    Delta, ErrorBody, FunctionCallDelta, ToolCall, ToolCallDelta, Usage,
};
use futures_util::StreamExt;
use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Start, UpstreamError};

/// The demo fixtures, used when no `fixtures` file is configured.
const DEMO_FIXTURES: &str = include_str!("../../../../infra/llm-fixtures/demo.toml");

#[derive(Debug, Clone, Deserialize, Default)]
pub struct BuiltinSettings {
    /// A fixtures file; empty means the demo fixtures built into the binary.
    #[serde(default)]
    pub fixtures: String,
    #[serde(default)]
    pub first_chunk_delay_ms: u64,
    #[serde(default)]
    pub chunk_delay_ms: u64,
}

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
struct ToolCallSpec {
    name: String,
    arguments: String,
}

#[derive(Debug, PartialEq, Eq)]
enum On {
    User,
    Tool,
}

#[derive(Debug)]
struct Rule {
    on: On,
    /// The tools whose results the rule answers; empty: any tool's.
    tools: Vec<String>,
    pattern: Regex,
    text: Option<String>,
    tool_calls: Vec<ToolCallSpec>,
    fail: Option<String>,
}

/// What the builtin model says to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The reply text split into tokens; concatenated they are the text.
    pub tokens: Vec<String>,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    /// The error the model breaks off with, after the text.
    pub failure: Option<String>,
}

impl Answer {
    pub fn text(&self) -> String {
        self.tokens.concat()
    }

    fn finish_reason(&self) -> &'static str {
        if self.tool_calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        }
    }
}

pub struct Builtin {
    rules: Vec<Rule>,
    first_chunk_delay: Duration,
    chunk_delay: Duration,
}

impl Builtin {
    pub fn new(settings: &BuiltinSettings) -> anyhow::Result<Self> {
        let text = if settings.fixtures.is_empty() {
            DEMO_FIXTURES.to_owned()
        } else {
            std::fs::read_to_string(&settings.fixtures)
                .with_context(|| format!("reading the fixtures file {}", settings.fixtures))?
        };
        Ok(Self {
            rules: parse_rules(&text)?,
            first_chunk_delay: Duration::from_millis(settings.first_chunk_delay_ms),
            chunk_delay: Duration::from_millis(settings.chunk_delay_ms),
        })
    }

    /// The answer to a request, by the first matching rule or the echo.
    pub fn answer(&self, request: &ChatCompletionRequest) -> Answer {
        let last = request.messages.last();
        let last_user = request.last_user_text().unwrap_or_default();
        let (on, subject, tool_name) = match last {
            Some(m) if m.role == "tool" => (On::Tool, m.text(), tool_name_of(request, m)),
            _ => (On::User, last_user.clone(), None),
        };
        let offered = offered_tools(request);
        let rule = self.rules.iter().find_map(|rule| {
            if rule.on != on {
                return None;
            }
            if !rule.tools.is_empty()
                && !tool_name
                    .as_ref()
                    .is_some_and(|name| rule.tools.contains(name))
            {
                return None;
            }
            // Like a real model, it calls only the tools the request offers.
            if !rule
                .tool_calls
                .iter()
                .all(|call| offered.contains(&call.name.as_str()))
            {
                return None;
            }
            rule.pattern.captures(&subject).map(|caps| (rule, caps))
        });
        let (text, tool_calls, failure) = match rule {
            Some((rule, caps)) => {
                let expand = |template: &str| {
                    let mut out = String::new();
                    caps.expand(template, &mut out);
                    out
                };
                let text = rule.text.as_deref().map(expand).unwrap_or_default();
                let calls = rule
                    .tool_calls
                    .iter()
                    .enumerate()
                    .map(|(i, spec)| {
                        ToolCall::function(
                            format!("call_{}_{i}", short_id()),
                            spec.name.clone(),
                            expand(&spec.arguments),
                        )
                    })
                    .collect();
                (text, calls, rule.fail.as_deref().map(expand))
            }
            None if last_user.trim().is_empty() => {
                ("I have nothing to answer yet.".to_owned(), Vec::new(), None)
            }
            None => (last_user, Vec::new(), None),
        };
        let input_tokens = request
            .messages
            .iter()
            .map(|m| count_tokens(&m.text()))
            .sum();
        let tokens = tokenize(&text);
        let call_tokens: u64 = tool_calls
            .iter()
            .map(|c| 1 + count_tokens(&c.function.arguments))
            .sum();
        let usage = Usage::new(input_tokens, tokens.len() as u64 + call_tokens);
        Answer {
            tokens,
            tool_calls,
            usage,
            failure,
        }
    }

    /// Answers `body` (already validated) as a whole completion or a stream.
    pub async fn start(
        &self,
        model: &str,
        body: &Map<String, Value>,
        stream: bool,
    ) -> Result<Start, UpstreamError> {
        let request: ChatCompletionRequest = serde_json::from_value(Value::Object(body.clone()))
            .unwrap_or_else(|_| empty_request(model));
        let answer = self.answer(&request);
        let id = format!("chatcmpl-{}", short_id());
        if !stream {
            tokio::time::sleep(self.first_chunk_delay).await;
            if let Some(message) = &answer.failure {
                let body = ErrorBody::new(message.as_str(), "server_error", "builtin_failure");
                return Err(UpstreamError::Refused {
                    status: 500,
                    body: serde_json::to_string(&body).unwrap_or_default(),
                });
            }
            // Like OpenAI: a message that only calls tools has no content.
            let message = if answer.tool_calls.is_empty() {
                ChatMessage::new("assistant", answer.text())
            } else {
                let mut message = ChatMessage::assistant_tool_calls(answer.tool_calls.clone());
                let text = answer.text();
                message.content = (!text.is_empty()).then_some(Value::String(text));
                message
            };
            let completion = ChatCompletion {
                id,
                object: "chat.completion".into(),
                created: Utc::now().timestamp(),
                model: model.to_owned(),
                choices: vec![Choice {
                    index: 0,
                    message,
                    finish_reason: Some(answer.finish_reason().into()),
                }],
                usage: Some(answer.usage),
            };
            return Ok(Start::Complete(
                serde_json::to_value(completion).unwrap_or(Value::Null),
            ));
        }
        let mut chunks: Vec<Result<String, UpstreamError>> = stream_chunks(&id, model, &answer)
            .into_iter()
            .map(Ok)
            .collect();
        if let Some(message) = answer.failure {
            chunks.push(Err(UpstreamError::Broken(message)));
        }
        let (first, between) = (self.first_chunk_delay, self.chunk_delay);
        let stream = futures_util::stream::iter(chunks.into_iter().enumerate()).then(
            move |(i, chunk)| async move {
                let delay = if i == 0 { first } else { between };
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                chunk
            },
        );
        Ok(Start::Stream(Box::pin(stream)))
    }
}

/// The chunks of a streamed answer: the role, one per token, the tool calls
/// (each in two pieces, as real models split them), the finish, the usage;
/// or, for an answer that fails, the role and the text's tokens only.
fn stream_chunks(id: &str, model: &str, answer: &Answer) -> Vec<String> {
    let created = Utc::now().timestamp();
    let chunk = |delta: Delta, finish: Option<&str>, usage: Option<Usage>| {
        let chunk = ChatCompletionChunk {
            id: id.to_owned(),
            object: "chat.completion.chunk".into(),
            created,
            model: model.to_owned(),
            choices: if usage.is_some() {
                Vec::new()
            } else {
                vec![ChunkChoice {
                    index: 0,
                    delta,
                    finish_reason: finish.map(str::to_owned),
                }]
            },
            usage,
        };
        serde_json::to_string(&chunk).unwrap_or_default()
    };
    let mut chunks = vec![chunk(
        Delta {
            role: Some("assistant".into()),
            content: Some(String::new()),
            ..Delta::default()
        },
        None,
        None,
    )];
    for token in &answer.tokens {
        chunks.push(chunk(
            Delta {
                content: Some(token.clone()),
                ..Delta::default()
            },
            None,
            None,
        ));
    }
    if answer.failure.is_some() {
        return chunks;
    }
    for (index, call) in answer.tool_calls.iter().enumerate() {
        let arguments = &call.function.arguments;
        let split = arguments
            .char_indices()
            .nth(arguments.chars().count() / 2)
            .map_or(0, |(i, _)| i);
        let pieces = [
            ToolCallDelta {
                index: index as u32,
                id: Some(call.id.clone()),
                kind: Some("function".into()),
                function: Some(FunctionCallDelta {
                    name: Some(call.function.name.clone()),
                    arguments: Some(arguments[..split].to_owned()),
                }),
            },
            ToolCallDelta {
                index: index as u32,
                id: None,
                kind: None,
                function: Some(FunctionCallDelta {
                    name: None,
                    arguments: Some(arguments[split..].to_owned()),
                }),
            },
        ];
        for piece in pieces {
            chunks.push(chunk(
                Delta {
                    tool_calls: Some(vec![piece]),
                    ..Delta::default()
                },
                None,
                None,
            ));
        }
    }
    chunks.push(chunk(Delta::default(), Some(answer.finish_reason()), None));
    chunks.push(chunk(Delta::default(), None, Some(answer.usage)));
    chunks
}

fn parse_rules(text: &str) -> anyhow::Result<Vec<Rule>> {
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

/// The names of the functions the request offers as tools.
fn offered_tools(request: &ChatCompletionRequest) -> Vec<&str> {
    request
        .tools
        .iter()
        .flatten()
        .filter_map(|tool| tool.get("function")?.get("name")?.as_str())
        .collect()
}

/// The name of the tool whose result `message` is, from the assistant
/// message that asked for it.
fn tool_name_of(request: &ChatCompletionRequest, message: &ChatMessage) -> Option<String> {
    let id = message.tool_call_id.as_deref()?;
    request
        .messages
        .iter()
        .filter_map(|m| m.tool_calls.as_ref())
        .flatten()
        .find(|c| c.id == id)
        .map(|c| c.function.name.clone())
}

fn empty_request(model: &str) -> ChatCompletionRequest {
    ChatCompletionRequest {
        model: model.to_owned(),
        messages: Vec::new(),
        stream: None,
        stream_options: None,
        tools: None,
        extra: Map::new(),
    }
}

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// Splits text into tokens that concatenate back to it exactly: each token is
/// a run of whitespace followed by a run of non-whitespace.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut seen_word = false;
    for ch in text.chars() {
        if ch.is_whitespace() && seen_word {
            tokens.push(std::mem::take(&mut current));
            seen_word = false;
        }
        if !ch.is_whitespace() {
            seen_word = true;
        }
        current.push(ch);
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

pub fn count_tokens(text: &str) -> u64 {
    tokenize(text).len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let body = body.as_object().unwrap();
        let Ok(Start::Stream(stream)) = model.start("builtin", body, true).await else {
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

        match model.start("builtin", body, false).await {
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
}

#[cfg(test)]
#[path = "builtin_fuzz.rs"]
mod fuzz;
