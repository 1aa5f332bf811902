//! The recorder under pressure: a full queue slows callers down but loses
//! nothing, and a graceful shutdown writes everything still queued.

use confab_kit::db::Db;
use confab_kit::testing::{metric, metrics_page};
use llm_proxy_service::store::llm_calls;
use llm_proxy_service::store::trace_events::{self, EventFilter};
use serde_json::json;

use crate::common::{Proxy, sse_data};

async fn streamed_call(proxy: &Proxy) {
    let response = proxy.complete(&json!({"model": "builtin", "stream": true, "messages": [{"role": "user", "content": "alpha beta gamma"}]})).await;
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

async fn execute(db: &Db, sql: &str) {
    use diesel_async::RunQueryDsl;
    let result: Result<usize, confab_kit::db::DbError> = confab_kit::db_run!(db, |conn| {
        diesel::sql_query(sql)
            .execute(conn)
            .await
            .map_err(Into::into)
    });
    result.unwrap();
}

async fn write_failures(proxy: &Proxy) -> f64 {
    let metrics = metrics_page(&proxy.http, &proxy.url, None).await;
    metric(&metrics, "llm_proxy_record_write_failures_total").unwrap_or(0.0)
}

#[tokio::test]
async fn a_failed_write_is_retried_until_it_succeeds() {
    let proxy = Proxy::start(|_| {}).await;
    let before = write_failures(&proxy).await;
    // Take the events table away: every batch now fails as a whole.
    execute(
        &proxy.db,
        "ALTER TABLE trace_events RENAME TO trace_events_away",
    )
    .await;
    streamed_call(&proxy).await;
    let mut failures = before;
    for _ in 0..400 {
        failures = write_failures(&proxy).await;
        if failures > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(failures > before, "the failed write shows on /metrics");
    assert!(
        llm_calls::list_for_user(&proxy.db, "usr-ada", 10)
            .await
            .unwrap()
            .is_empty()
    );

    execute(
        &proxy.db,
        "ALTER TABLE trace_events_away RENAME TO trace_events",
    )
    .await;
    let calls = proxy.calls(1).await;
    assert_eq!(
        calls.len(),
        1,
        "the batch was written once the table was back"
    );
    for _ in 0..400 {
        if stored_events(&proxy.db).await == 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(stored_events(&proxy.db).await, 5);
}
