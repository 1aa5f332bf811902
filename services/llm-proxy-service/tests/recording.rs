//! The recorder under pressure: a full queue slows callers down but loses
//! nothing, and a graceful shutdown writes everything still queued.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on any unexpected error"
)]

mod common;

use common::{MATH_KEY, Proxy, sse_data};
use confab_kit::db::Db;
use llm_proxy_service::store::llm_calls;
use llm_proxy_service::store::trace_events::{self, EventFilter};
use serde_json::json;

async fn streamed_call(proxy: &Proxy) {
    let response = proxy
        .completions(Some(MATH_KEY))
        .json(&json!({"model": "builtin", "stream": true, "messages": [{"role": "user", "content": "alpha beta gamma"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        sse_data(response).await.last().map(String::as_str),
        Some("[DONE]")
    );
}

async fn stored_events(db: &Db) -> usize {
    let filter = EventFilter {
        user_id: Some("usr-ada".into()),
        limit: 100_000,
        ..EventFilter::default()
    };
    trace_events::list(db, &filter).await.unwrap().len()
}

#[tokio::test]
async fn a_full_queue_slows_callers_down_and_loses_nothing() {
    let proxy = Proxy::start(|settings| {
        settings.recording.queue_capacity = 2;
        settings.recording.batch_size = 3;
    })
    .await;
    const CALLS: usize = 40;
    futures_util::future::join_all((0..CALLS).map(|_| streamed_call(&proxy))).await;
    let calls = proxy.calls(CALLS).await;
    assert_eq!(calls.len(), CALLS);
    // Five events a call: request, three deltas, response.
    let db = proxy.db.clone();
    let database = proxy.stop().await;
    assert_eq!(stored_events(&db).await, CALLS * 5);
    drop(database);
}

#[tokio::test]
async fn a_graceful_shutdown_writes_everything_still_queued() {
    let proxy = Proxy::start(|settings| {
        // One large batch that only the shutdown will flush.
        settings.recording.batch_size = 10_000;
    })
    .await;
    const CALLS: usize = 20;
    futures_util::future::join_all((0..CALLS).map(|_| streamed_call(&proxy))).await;
    let db = proxy.db.clone();
    let _database = proxy.stop().await;
    let calls = llm_calls::list_for_user(&db, "usr-ada", 1000)
        .await
        .unwrap();
    assert_eq!(calls.len(), CALLS);
    assert_eq!(stored_events(&db).await, CALLS * 5);
}
