//! Fuzzing the parsers that read client bytes (feature `testing`), with
//! `proptest` inside `cargo test`.
//!
//! Every fuzz test is named `fuzz_…` and runs [`fuzz`] (or, for a property
//! that drives a real service over a socket, [`inputs`]): rounds of
//! `PROPTEST_CASES` inputs (256 unless set), each round from a fresh random
//! seed, until `CONFAB_FUZZ_SECONDS` have passed; unset, one round, which is
//! what CI runs. To fuzz for a fixed time:
//!
//! ```sh
//! infra/fuzz.sh 60          # every fuzz_ test, 60 s each
//! ```
//!
//! A failing input is shrunk to a small one and reported in the panic.
//!
//! The inputs mix three kinds: arbitrary text or bytes, arbitrary JSON
//! ([`json`]), and valid samples with a few bytes changed ([`mutated`]),
//! which reach deeper into a parser than noise does.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value};

/// How long to fuzz each test: `CONFAB_FUZZ_SECONDS`, or one round.
fn budget() -> Option<Duration> {
    std::env::var("CONFAB_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&s: &u64| s > 0)
        .map(Duration::from_secs)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        // Nothing is written next to the sources; a failure prints its input.
        failure_persistence: None,
        ..Config::default()
    })
}

/// Checks `property` on inputs from `strategy` for the fuzzing budget;
/// panics with the smallest failing input found.
pub fn fuzz<S>(strategy: S, property: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let deadline = budget().map(|b| Instant::now() + b);
    let mut rounds = 0u64;
    loop {
        rounds += 1;
        if let Err(failure) = runner().run(&strategy, &property) {
            panic!("fuzzing found a failing input (round {rounds}): {failure}");
        }
        if deadline.is_none_or(|d| Instant::now() >= d) {
            break;
        }
    }
}

/// Inputs from `strategy`, for a property checked outside proptest's runner
/// (one that awaits a real service): one round's worth, or as many as the
/// fuzzing budget allows when `more` is called until it answers `None`.
pub struct Inputs<S: Strategy> {
    strategy: S,
    runner: TestRunner,
    left_in_round: u32,
    cases: u32,
    deadline: Option<Instant>,
}

pub fn inputs<S: Strategy>(strategy: S) -> Inputs<S> {
    let runner = runner();
    let cases = runner.config().cases;
    Inputs {
        strategy,
        runner,
        left_in_round: cases,
        cases,
        deadline: budget().map(|b| Instant::now() + b),
    }
}

impl<S: Strategy> Iterator for Inputs<S> {
    type Item = S::Value;

    fn next(&mut self) -> Option<S::Value> {
        if self.left_in_round == 0 {
            if self.deadline.is_none_or(|d| Instant::now() >= d) {
                return None;
            }
            self.left_in_round = self.cases;
        }
        self.left_in_round -= 1;
        let tree = self.strategy.new_tree(&mut self.runner).ok()?;
        Some(tree.current())
    }
}

/// Arbitrary JSON: scalars (odd numbers and strings included), arrays and
/// objects nested a few levels.
pub fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        prop::sample::select(INTERESTING_STRINGS).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An object key: often one a parser looks for, otherwise anything.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(INTERESTING_STRINGS).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// Strings that parsers in Confab treat specially.
const INTERESTING_STRINGS: &[&str] = &[
    "",
    "type",
    "data",
    "text",
    "message",
    "prompt",
    "patch",
    "base_version",
    "op",
    "path",
    "from",
    "value",
    "add",
    "remove",
    "replace",
    "move",
    "copy",
    "test",
    "/",
    "/-",
    "/a",
    "/0",
    "~0",
    "~1",
    "_auth",
    "user_id",
    "role",
    "admin",
    "id",
    "jsonrpc",
    "2.0",
    "method",
    "params",
    "result",
    "error",
    "kind",
    "parts",
    "final",
    "status",
    "state",
    "..",
    "%2e%2e",
    "\u{0}",
    "init_session",
    "user_prompt",
    "tree_edit",
    "cancel",
    "ping",
    "close_session",
];

/// Edits that make a valid document almost valid: the bytes JSON and its
/// neighbours give meaning to.
const SPECIAL: &[char] = &[
    '{',
    '}',
    '[',
    ']',
    '"',
    '\\',
    ':',
    ',',
    '0',
    '-',
    'e',
    '.',
    'n',
    't',
    '\n',
    '\u{0}',
    '/',
    '%',
    '~',
    'é',
    '\u{10ffff}',
];

/// One of `samples` with up to eight characters inserted, removed or
/// replaced at random places.
pub fn mutated(samples: Vec<String>) -> impl Strategy<Value = String> {
    let edits = prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            0..3u8,
            prop_oneof![prop::sample::select(SPECIAL), any::<char>()],
        ),
        0..8,
    );
    (prop::sample::select(samples), edits).prop_map(|(sample, edits)| {
        let mut chars: Vec<char> = sample.chars().collect();
        for (at, kind, c) in edits {
            let at = at.index(chars.len() + 1);
            match kind {
                0 => chars.insert(at, c),
                1 if at < chars.len() => {
                    chars.remove(at);
                }
                _ if at < chars.len() => chars[at] = c,
                _ => chars.push(c),
            }
        }
        chars.into_iter().collect()
    })
}

/// Text a client could send: noise, arbitrary JSON, or a mutated sample.
pub fn client_text(samples: Vec<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        1 => any::<String>(),
        2 => json().prop_map(|v| v.to_string()),
        4 => mutated(samples),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutated_samples_stay_close_to_their_sample() {
        let samples = vec!["{\"type\":\"ping\"}".to_owned()];
        let mut seen_intact = false;
        for text in inputs(mutated(samples)).take(200) {
            assert!(text.chars().count() <= 15 + 8);
            seen_intact |= text == "{\"type\":\"ping\"}";
        }
        assert!(seen_intact, "no edit at all is one of the cases");
    }

    #[test]
    fn a_failing_property_panics_with_its_input() {
        let failed = std::panic::catch_unwind(|| {
            fuzz(any::<u8>(), |n| {
                prop_assert!(n < 200);
                Ok(())
            })
        });
        let message = failed.unwrap_err();
        let message = message.downcast_ref::<String>().unwrap();
        assert!(
            message.contains("200"),
            "shrunk to the smallest failure: {message}"
        );
    }
}
