//! Fuzzing what chat-service reads from an agent: the SSE byte stream
//! (eventsource-stream) and the A2A results in it, both versions. Whatever
//! the bytes and however they are cut into chunks, reading them yields
//! events or errors, never a panic.

use std::convert::Infallible;

use bytes::Bytes;
use confab_kit::fuzz;
use confab_protocol::a2a::ProtocolVersion;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use proptest::prelude::*;

use super::{decode, without_bom};

/// SSE frames an agent sends, in both versions: a task, a status update
/// with usage, an artifact with text and a tree patch, an error.
fn samples() -> Vec<String> {
    [
        r#"{"jsonrpc":"2.0","id":1,"result":{"task":{"id":"t1","contextId":"c1","status":{"state":"TASK_STATE_WORKING"}}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"statusUpdate":{"taskId":"t1","contextId":"c1","status":{"state":"TASK_STATE_COMPLETED","message":{"messageId":"m","role":"ROLE_AGENT","parts":[{"text":"done"}]}},"metadata":{"usage":{"input_tokens":3,"output_tokens":4}}}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"artifactUpdate":{"taskId":"t1","contextId":"c1","artifact":{"artifactId":"a1","parts":[{"text":"4"},{"data":{"tree_patch":[{"op":"add","path":"/a","value":1}]}}]}}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"kind":"status-update","taskId":"t","contextId":"c","final":true,"status":{"state":"completed"},"metadata":{"usage":{"input_tokens":1,"output_tokens":2}}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"kind":"artifact-update","taskId":"t","contextId":"c","artifact":{"artifactId":"a","parts":[{"kind":"text","text":"x"},{"kind":"data","data":{"k":1}}]},"append":true,"lastChunk":false}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"kind":"task","id":"t","contextId":"c","status":{"state":"working"},"artifacts":[{"artifactId":"a","parts":[{"kind":"text","text":"so far"}]}]}}"#,
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"busy"}}"#,
    ]
    .iter()
    .map(|data| format!("id: 1\ndata: {data}\n\n"))
    .collect()
}

#[test]
fn fuzz_an_agents_sse_stream_is_read_without_panicking() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    // Two or three frames back to back, then cut into chunks anywhere (a
    // chunk boundary may split a UTF-8 sequence).
    let streams = prop::collection::vec(fuzz::client_text(samples()), 1..4)
        .prop_map(|frames| frames.concat().into_bytes());
    let cuts = prop::collection::vec(any::<prop::sample::Index>(), 0..6);
    let versions = prop::sample::select(ProtocolVersion::ALL.to_vec());
    fuzz::fuzz((streams, cuts, versions), |(bytes, cuts, version)| {
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        at.push(0);
        at.push(bytes.len());
        at.sort_unstable();
        let chunks: Vec<Result<Bytes, Infallible>> = at
            .windows(2)
            .map(|w| Ok(Bytes::copy_from_slice(&bytes[w[0]..w[1]])))
            .collect();
        let events = runtime.block_on(
            without_bom(futures_util::stream::iter(chunks))
                .eventsource()
                .map(|event| decode(version, event))
                .collect::<Vec<_>>(),
        );
        prop_assert!(events.len() <= bytes.len() + 1);
        Ok(())
    });
}

#[test]
fn a_stream_that_starts_with_a_byte_order_mark_is_read_however_it_is_split() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let bytes = "\u{feff}data: {}\n\n".as_bytes();
    for cut in 0..=bytes.len() {
        let chunks: Vec<Result<Bytes, Infallible>> = vec![
            Ok(Bytes::copy_from_slice(&bytes[..cut])),
            Ok(Bytes::copy_from_slice(&bytes[cut..])),
        ];
        let events = runtime.block_on(
            without_bom(futures_util::stream::iter(chunks))
                .eventsource()
                .collect::<Vec<_>>(),
        );
        assert_eq!(events.len(), 1, "cut at {cut}");
        assert_eq!(events[0].as_ref().map(|e| e.data.as_str()).ok(), Some("{}"));
    }
}
