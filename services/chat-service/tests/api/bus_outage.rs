//! NATS stopped and started again while a turn runs: the turn goes on, its
//! reply is saved whole, `/ready` says the bus is away meanwhile, the client
//! streaming it live gets every event once it is back (each once, in
//! order), and turns work again. The test runs its own `nats-server`, which it
//! can stop, and is skipped where there is none.

use std::time::Duration;

use confab_kit::testing::Stack;
use confab_kit::testing::nats::NatsServer;
use futures_util::StreamExt;

use crate::common::{
    TestApp, sse_events, start_agents, streamed_text, until_first_text, without_ids,
};

async fn ready(chat: &TestApp) -> (u16, String) {
    let response = chat
        .http
        .get(format!("{}/ready", chat.url))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Polls `check` until it holds; fails after a generous wait.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} never happened");
}

#[tokio::test]
async fn a_turn_running_through_a_nats_outage_is_saved_whole_and_turns_work_after() {
    let Some(mut nats) = NatsServer::start().await else {
        eprintln!("no nats-server to stop and start: skipped");
        return;
    };
    let mut stack = Stack::new();
    let agents = start_agents(40, &mut stack).await;
    let chat = TestApp::start(&agents, &mut stack, |settings| {
        settings.bus.url = Some(nats.url());
        settings.bus.timeout_secs = 1;
    })
    .await;
    assert_eq!(ready(&chat).await.0, 200);
    let conversation = chat.conversation("usr-ada", "math").await;
    let words = vec!["word"; 100].join(" ");
    let response = chat.stream("usr-ada", &conversation, &words).await;
    let mut stream = sse_events(response);
    let mut seen = until_first_text(&mut stream).await;

    nats.stop();
    until("/ready failing", || async { ready(&chat).await.0 == 503 }).await;
    let (_, reason) = ready(&chat).await;
    assert!(
        reason.contains("NATS") || reason.contains("JetStream"),
        "{reason}"
    );

    // The turn goes on without the bus, and its reply is saved whole.
    until("the reply saved", || async {
        let messages = chat.messages("usr-ada", &conversation).await;
        messages.len() == 2 && messages[1]["status"] == "complete"
    })
    .await;
    let messages = chat.messages("usr-ada", &conversation).await;
    assert_eq!(messages[1]["content"], words.as_str());

    assert!(nats.resume().await, "nats-server starts again");
    until("/ready again", || async { ready(&chat).await.0 == 200 }).await;
    // The client's stream gets the rest once the bus is back: every event
    // once, in order, up to `done`.
    seen.extend(stream.collect::<Vec<_>>().await);
    let ids: Vec<u64> = seen.iter().map(|(id, _)| *id).collect();
    let expected: Vec<u64> = (1..=ids.len() as u64).collect();
    assert_eq!(ids, expected, "SSE ids");
    let events = without_ids(seen);
    assert_eq!(streamed_text(&events), words.as_str());
    assert_eq!(events.last().unwrap()["type"], "done");
    assert_eq!(events.last().unwrap()["status"], "complete");

    let events = chat.turn("usr-ada", &conversation, "What is 6 * 7?").await;
    assert_eq!(streamed_text(&events), "The answer is 42.");
}
