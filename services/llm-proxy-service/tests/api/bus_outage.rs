//! NATS stopped and started again while a call streams: the call waits at
//! its next trace event and goes on when the bus is back; the call and each
//! of its events are recorded once, numbered once; `/ready` says the bus is
//! away meanwhile. The test runs its own `nats-server` (Debian's package),
//! which it can kill, and is skipped where there is none.

use confab_kit::testing::nats::NatsServer;
use confab_kit::testing::{metric, metrics_page};
use llm_proxy_service::store::llm_calls::status;
use llm_proxy_service::store::trace_events;

use crate::common::buses::TestBus;
use crate::common::processes::{delta_text, eventually, follow};
use crate::common::{MATH_KEY, Proxy, start_streamed};

/// Waits until `check` holds.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually(what, || {
        let holds = check();
        async move { holds.await.then_some(()) }
    })
    .await;
}

async fn ready_status(proxy: &Proxy) -> u16 {
    proxy
        .http
        .get(format!("{}/ready", proxy.url))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

#[tokio::test]
async fn a_call_streaming_through_a_nats_outage_is_recorded_once_with_every_event() {
    let Some(mut nats) = NatsServer::start().await else {
        eprintln!("no nats-server to stop and start: skipped");
        return;
    };
    let bus = TestBus::Nats {
        url: nats.url(),
        namespace: "confab".to_owned(),
    };
    let proxy = Proxy::start_on_bus(&bus, |settings| {
        if let Some(llm_proxy_service::providers::ProviderSettings::Builtin(builtin)) =
            settings.providers.get_mut("builtin")
        {
            builtin.chunk_delay_ms = 20;
        }
        settings.bus.timeout_secs = 1;
    })
    .await;
    let prompt = (0..100)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let (id, response) =
        start_streamed(&proxy.http, &proxy.url, MATH_KEY, "usr-ada", &prompt).await;
    let (received, reading) = follow(response);
    until("the first words", || async {
        !received.lock().unwrap().is_empty()
    })
    .await;

    nats.kill();
    until("/ready to fail", || async {
        ready_status(&proxy).await == 503
    })
    .await;
    let failures = || async {
        let page = metrics_page(&proxy.http, &proxy.url, None).await;
        metric(&page, "llm_proxy_trace_publish_failures_total").unwrap_or(0.0)
    };
    // Three attempts timed out: the later ones were queued while the client
    // was disconnected, and go out when it reconnects.
    until("attempts the bus did not take", || async {
        failures().await >= 3.0
    })
    .await;
    let stalled = received.lock().unwrap().clone();
    assert!(stalled.len() < prompt.len(), "the call waits for the bus");

    assert!(nats.resume().await, "nats-server starts again");
    assert!(reading.await.unwrap(), "the stream ended with [DONE]");
    assert_eq!(*received.lock().unwrap(), prompt);
    until("/ready to pass", || async {
        ready_status(&proxy).await == 200
    })
    .await;

    let calls = proxy.calls(1).await;
    assert_eq!((calls.len(), calls[0].status.as_str()), (1, status::OK));
    until("every event stored", || async {
        let events = trace_events::of_call(&proxy.db, &id).await.unwrap();
        events.last().is_some_and(|e| e.kind == "llm.response")
    })
    .await;
    let events = trace_events::of_call(&proxy.db, &id).await.unwrap();
    let deltas = delta_text(&events);
    assert_eq!(deltas, prompt, "each delta once, in order");
    assert_eq!(events.first().unwrap().kind, "llm.request");
    proxy.stop().await;
}
