//! Calls whose instance dies: the real binary killed with SIGKILL mid-stream
//! leaves a row per call, closed `interrupted` with what had streamed, by
//! its restart (in process) or by another instance once its lease expired
//! (NATS, where nothing the client received is missing from the row); and
//! an instance never closes the calls of one that is alive.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use confab_kit::db::Db;
use confab_kit::testing::TestDatabase;
use llm_proxy_service::instances::INTERRUPTED;
use llm_proxy_service::store::MIGRATIONS;
use llm_proxy_service::store::llm_calls::{self, LlmCall, status};
use llm_proxy_service::store::trace_events::{self, TraceEventRow};
use serde_json::Value;

use crate::common::buses::{TestBus, on_both_buses};
use crate::common::processes::{Killed, delta_text, eventually, follow, free_port};
use crate::common::{MATH_KEY, Proxy, sse_data, start_streamed, streamed_request};

/// The llm-proxy-service binary, started on `database_url` and `bus`,
/// answering slowly (20 ms between chunks) with a lease of 1 s; returns once
/// it is ready.
async fn start_binary(port: u16, database_url: &str, bus: &TestBus) -> Killed {
    let child = Command::new(env!("CARGO_BIN_EXE_llm-proxy-service"))
        .env_clear()
        .env("PORT", port.to_string())
        .env("DATABASE_URL", database_url)
        .env("CONFAB__PROVIDERS__BUILTIN__CHUNK_DELAY_MS", "20")
        .env("CONFAB__RECORDING__LEASE_SECS", "1")
        .envs(bus.env())
        .env("RUST_LOG", "warn")
        // Development: it runs on the development secrets of the defaults.
        .env("CONFAB__ENV", "development")
        .stdout(output())
        .stderr(output())
        .spawn()
        .expect("starting the llm-proxy-service binary");
    // Owned at once, so that it is killed and reaped whatever happens.
    let process = Killed(child);
    let ready = format!("http://127.0.0.1:{port}/ready");
    eventually(
        &format!("llm-proxy-service to be ready on {ready}"),
        || async {
            reqwest::get(&ready)
                .await
                .is_ok_and(|r| r.status().is_success())
                .then_some(())
        },
    )
    .await;
    process
}

/// The logs of a started binary go with the test's when `TEST_LOG` is set.
fn output() -> Stdio {
    if std::env::var_os("TEST_LOG").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    }
}

/// A prompt the builtin model echoes word by word: far longer than any
/// test waits for.
fn long_prompt() -> String {
    (0..2000)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A streaming call through `base`: its id, and the text its client has
/// received so far (read on in the background).
async fn start_call(
    http: &reqwest::Client,
    base: &str,
    prompt: &str,
) -> (String, Arc<Mutex<String>>) {
    let (id, response) = start_streamed(http, base, MATH_KEY, "usr-ada", prompt).await;
    (id, follow(response).0)
}

fn deltas(events: &[TraceEventRow]) -> usize {
    events.iter().filter(|e| e.kind == "llm.delta").count()
}

#[tokio::test]
async fn calls_cut_off_by_a_killed_process_are_interrupted_with_what_had_streamed() {
    on_both_buses(|bus| async move {
        let database = TestDatabase::new("llm-proxy").await.unwrap();
        let url = &database.settings.url;
        let doomed_port = free_port();
        let doomed = start_binary(doomed_port, url, &bus).await;
        // On NATS another instance closes the calls; in process, the restart.
        let _survivor = match bus.is_nats() {
            true => Some(start_binary(free_port(), url, &bus).await),
            false => None,
        };
        let db = Db::connect(&database.settings, &MIGRATIONS).await.unwrap();
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{doomed_port}");
        let prompt = long_prompt();
        const CALLS: usize = 8;
        let mut calls = Vec::new();
        for _ in 0..CALLS {
            calls.push(start_call(&http, &base, &prompt).await);
        }
        // Each call has streamed, and some of it is stored.
        for (id, _) in &calls {
            eventually("a stored delta of every call", || async {
                let events = trace_events::of_call(&db, id).await.unwrap();
                (deltas(&events) > 0).then_some(())
            })
            .await;
        }
        doomed.kill();
        let _restarted = match bus.is_nats() {
            true => None,
            false => Some(start_binary(doomed_port, url, &bus).await),
        };

        for (id, received) in &calls {
            let row: LlmCall = eventually("the call's row to be closed", || async {
                llm_calls::get(&db, id, None).await.unwrap()
            })
            .await;
            assert_eq!(row.status, status::INTERRUPTED, "{id}");
            assert_eq!(row.error.as_deref(), Some(INTERRUPTED));
            let response: Value = serde_json::from_str(row.response.as_deref().unwrap()).unwrap();
            let kept = response["content"].as_str().unwrap();
            let events = trace_events::of_call(&db, id).await.unwrap();
            let stored = delta_text(&events);
            assert_eq!(kept, stored, "the row holds what the stored deltas say");
            assert!(!kept.is_empty() && kept.len() < prompt.len(), "{kept:?}");
            assert!(prompt.starts_with(kept), "{kept:?}");
            let received = received.lock().unwrap().clone();
            assert!(
                prompt.starts_with(&received) && received.len() < prompt.len(),
                "the client was cut off mid-answer: {received:?}"
            );
            if bus.is_nats() {
                // Every delta was on the stream before its client got it:
                // what the dead instance had not written comes back from
                // there.
                assert!(kept.starts_with(&received), "{kept:?} / {received:?}");
            }
            // Whoever closed it told the call's subscribers.
            let error = eventually("the call's llm.error event", || async {
                let events = trace_events::of_call(&db, id).await.unwrap();
                events.into_iter().find(|e| e.kind == "llm.error")
            })
            .await;
            assert!(
                error.data.contains("stopped before it ended"),
                "{}",
                error.data
            );
        }
    })
    .await;
}

/// The builtin model answering slowly: 20 ms between chunks.
fn slow(settings: &mut llm_proxy_service::Settings) {
    if let Some(llm_proxy_service::providers::ProviderSettings::Builtin(builtin)) =
        settings.providers.get_mut("builtin")
    {
        builtin.chunk_delay_ms = 20;
    }
    settings.recording.lease_secs = 1;
}

#[tokio::test]
async fn an_instance_never_closes_the_calls_of_one_that_is_alive() {
    on_both_buses(|bus| async move {
        let running = Proxy::start_on_bus(&bus, slow).await;
        // 300 chunks, 20 ms apart: the other instance looks several times.
        let prompt = (0..300)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let calls: Vec<_> = (0..3)
            .map(|_| {
                let request =
                    streamed_request(&running.http, &running.url, MATH_KEY, "usr-ada", &prompt)
                        .send();
                tokio::spawn(async move { sse_data(request.await.unwrap()).await })
            })
            .collect();
        // The calls are in flight, their rows written...
        let instance = eventually("the calls' rows in flight", || async {
            let instances = llm_calls::instances_in_flight(&running.db, "")
                .await
                .unwrap();
            let instance = instances.first()?.clone();
            let in_flight = llm_calls::in_flight(&running.db, &instance).await.unwrap();
            (in_flight.len() == 3).then_some(instance)
        })
        .await;
        // ...when another instance starts (closing what dead instances left)
        // and keeps looking (every second) while they run on.
        let other = Proxy::start_with(running.database(), &bus, slow).await;
        for call in calls {
            let frames = call.await.unwrap();
            assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
        }
        let rows = running.calls(3).await;
        assert_eq!(rows.len(), 3);
        for row in rows {
            assert_eq!(row.status, status::OK, "{row:?}");
            assert_eq!(row.instance.as_deref(), Some(instance.as_str()));
            let events = trace_events::of_call(&running.db, &row.id).await.unwrap();
            assert!(events.iter().all(|e| e.kind != "llm.error"));
        }
        other.stop().await;
        running.stop().await;
    })
    .await;
}
