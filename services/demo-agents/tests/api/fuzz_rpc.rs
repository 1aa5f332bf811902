//! Fuzzing an agent's JSON-RPC endpoint over HTTP, in both A2A versions:
//! arbitrary text, arbitrary JSON and mutated valid requests, from an
//! authenticated caller. Whatever the body, the agent answers a JSON-RPC
//! envelope (or, for a streaming call it accepted, an SSE stream of them),
//! never a 5xx. See `confab_kit::fuzz` for how to run this longer.

use confab_kit::fuzz;
use proptest::prelude::*;
use serde_json::Value;

use crate::common::Agents;

/// Valid requests of both versions: every method, with the shapes the
/// specification gives.
const REQUESTS: &[&str] = &[
    r#"{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"m1","role":"ROLE_USER","parts":[{"text":"What is 6 * 7?"}]},"configuration":{"blocking":true}}}"#,
    r#"{"jsonrpc":"2.0","id":2,"method":"SendStreamingMessage","params":{"message":{"messageId":"m2","contextId":"c","role":"ROLE_USER","parts":[{"text":"Uppercase: hi"}],"metadata":{"confab":{"user_id":"usr-fuzz","history":[]}}}}}"#,
    r#"{"jsonrpc":"2.0","id":3,"method":"GetTask","params":{"id":"task-1"}}"#,
    r#"{"jsonrpc":"2.0","id":4,"method":"CancelTask","params":{"id":"task-1"}}"#,
    r#"{"jsonrpc":"2.0","id":5,"method":"SubscribeToTask","params":{"id":"task-1"}}"#,
    r#"{"jsonrpc":"2.0","id":"a","method":"message/send","params":{"message":{"kind":"message","messageId":"m3","role":"user","parts":[{"kind":"text","text":"reverse: abc"}]}}}"#,
    r#"{"jsonrpc":"2.0","id":6,"method":"message/stream","params":{"message":{"kind":"message","messageId":"m4","role":"user","parts":[{"kind":"data","data":{"k":[1]}},{"kind":"text","text":"hello"}]}}}"#,
    r#"{"jsonrpc":"2.0","id":7,"method":"tasks/get","params":{"id":"t","historyLength":2}}"#,
    r#"{"jsonrpc":"2.0","id":8,"method":"tasks/resubscribe","params":{"id":"t"}}"#,
];

#[tokio::test]
async fn fuzz_json_rpc_bodies_get_a_json_rpc_answer_in_both_versions() {
    let agents = Agents::start(0).await;
    let samples = REQUESTS.iter().map(|s| (*s).to_owned()).collect();
    let versions = prop::sample::select(vec![None, Some("1.0"), Some("0.3"), Some("9.9")]);
    for (body, version) in fuzz::inputs((fuzz::client_text(samples), versions)) {
        let mut request = agents
            .http
            .post(agents.url("text"))
            .bearer_auth(&agents.service_token)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(version) = version {
            request = request.header("A2A-Version", version);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        assert!(!status.is_server_error(), "{status} for {body:?}");
        let is_sse = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let text = response.text().await.unwrap();
        let envelopes: Vec<&str> = if is_sse {
            text.lines()
                .filter_map(|line| line.strip_prefix("data: "))
                .collect()
        } else {
            vec![&text]
        };
        assert!(!envelopes.is_empty(), "an empty answer to {body:?}");
        for envelope in envelopes {
            let envelope: Value = serde_json::from_str(envelope).unwrap();
            assert_eq!(envelope["jsonrpc"], "2.0", "{envelope} for {body:?}");
            assert!(
                envelope.get("result").is_some() ^ envelope.get("error").is_some(),
                "{envelope} for {body:?}"
            );
        }
    }
}
