//! Two chat-service instances on one database and one bus (DESIGN §15): a
//! turn runs on one of them and is resumed, followed, refused and canceled
//! through the other.
//!
//! On NATS only: the in-process bus joins the parts of one process, not two
//! instances. CI runs these with `CONFAB_TEST_NATS_URL` set; without it
//! they say so and pass.

use std::time::Duration;

use confab_kit::bus::TEST_NATS_ENV;
use confab_kit::testing::Stack;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::ws::Envelope;
use crate::common::{
    TestApp, numbered, sse_events, start_agents, streamed_text, until_first_text, without_ids,
};

/// Two instances of one chat-service in front of the demo agents (their
/// model slowed by `chunk_delay_ms`), or `None` without a NATS server.
async fn two_instances(chunk_delay_ms: u64) -> Option<(Stack, TestApp, TestApp)> {
    if std::env::var(TEST_NATS_ENV).is_err() {
        eprintln!("{TEST_NATS_ENV} is not set: two instances need NATS; skipped");
        return None;
    }
    let mut stack = Stack::new();
    let agents = start_agents(chunk_delay_ms, &mut stack).await;
    let a = TestApp::start(&agents, &mut stack, |_| {}).await;
    let b = a.another(&mut stack).await;
    Some((stack, a, b))
}

#[tokio::test]
async fn a_turn_started_on_one_instance_resumes_on_the_other_with_every_event_once() {
    let Some((_stack, a, b)) = two_instances(30).await else {
        return;
    };
    let conversation = a.conversation("usr-ada", "math").await;
    let words = vec!["word"; 20].join(" ");

    let response = a.stream("usr-ada", &conversation, &words).await;
    let mut stream = sse_events(response);
    let (last, _) = *until_first_text(&mut stream).await.last().unwrap();
    drop(stream);

    let resumed = b
        .request(
            reqwest::Method::GET,
            &format!("/chat/conversations/{conversation}/stream"),
            "usr-ada",
        )
        .header("last-event-id", last.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let resumed = numbered(resumed).await;
    let ids: Vec<u64> = resumed.iter().map(|(id, _)| *id).collect();
    let expected: Vec<u64> = (last + 1..last + 1 + ids.len() as u64).collect();
    assert_eq!(
        ids, expected,
        "the events after {last}, each once, in order"
    );
    let (_, done) = resumed.last().unwrap();
    assert_eq!(
        (done["type"].as_str(), done["status"].as_str()),
        (Some("done"), Some("complete"))
    );
    // The first text read on A, then the rest read on B: the whole reply.
    let rest: Vec<Value> = resumed.into_iter().map(|(_, e)| e).collect();
    assert!(words.ends_with(&streamed_text(&rest)));
    assert!(streamed_text(&rest).len() < words.len());

    let messages = b.messages("usr-ada", &conversation).await;
    assert_eq!(messages.len(), 2, "exactly one assistant message");
    assert_eq!(messages[1]["status"], "complete");
    assert_eq!(messages[1]["content"], words.as_str());

    // How long events took from A to B's reader is counted.
    let page = confab_kit::testing::metrics_page(&b.http, &b.url, None).await;
    let delivered = confab_kit::testing::metric(&page, "chat_turn_event_delivery_seconds_count");
    assert!(delivered.is_some_and(|n| n > 0.0), "{page}");
}

#[tokio::test]
async fn two_turns_sent_at_once_to_two_instances_get_exactly_one_409() {
    let Some((_stack, a, b)) = two_instances(10).await else {
        return;
    };
    for round in 0..5 {
        let conversation = a.conversation("usr-ada", "math").await;
        let (on_a, on_b) = futures_util::join!(
            a.stream("usr-ada", &conversation, "one two three"),
            b.stream("usr-ada", &conversation, "four five six"),
        );
        let mut statuses = [on_a.status().as_u16(), on_b.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "round {round}");
        for response in [on_a, on_b] {
            if response.status() == 200 {
                let events = crate::common::events(response).await;
                assert_eq!(events.last().unwrap()["status"], "complete");
            } else {
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"]["code"], "turn_in_flight");
            }
        }
        let messages = a.messages("usr-ada", &conversation).await;
        assert_eq!(messages.len(), 2, "round {round}: one turn, one reply");
    }
}

#[tokio::test]
async fn a_cancel_sent_to_one_instance_stops_the_turn_running_on_the_other() {
    let Some((_stack, a, b)) = two_instances(40).await else {
        return;
    };
    let conversation = a.conversation("usr-ada", "math").await;
    let words = vec!["word"; 100].join(" ");
    let response = a.stream("usr-ada", &conversation, &words).await;
    let mut stream = sse_events(response);
    let mut events = until_first_text(&mut stream).await;
    // Another user cannot, from either instance.
    assert_eq!(b.cancel("usr-bob", &conversation).await.status(), 404);
    let canceled = b.cancel("usr-ada", &conversation).await;
    assert_eq!(canceled.status(), 202);
    events.extend(stream.collect::<Vec<_>>().await);
    let events = without_ids(events);
    let done = events.last().unwrap();
    assert_eq!(
        (done["type"].as_str(), done["status"].as_str()),
        (Some("done"), Some("canceled"))
    );
    let partial = streamed_text(&events);
    assert!(partial.len() < words.len(), "stopped mid-way");

    let messages = b.messages("usr-ada", &conversation).await;
    assert_eq!(messages[1]["status"], "canceled");
    assert_eq!(messages[1]["content"], partial.as_str());
    // Nothing runs any more, on either instance.
    assert_eq!(b.cancel("usr-ada", &conversation).await.status(), 409);
    assert_eq!(a.cancel("usr-ada", &conversation).await.status(), 409);
}

#[tokio::test]
async fn a_websocket_on_one_instance_follows_a_turn_started_over_rest_on_the_other() {
    let Some((_stack, a, b)) = two_instances(30).await else {
        return;
    };
    let conversation = a.conversation("usr-ada", "math").await;
    let words = vec!["word"; 20].join(" ");
    // Attached before the turn starts: it hears of it from B over the bus.
    let mut before = a.socket("usr-ada", "", false).await;
    before.init(json!({"conversation_id": conversation})).await;

    let started = b.stream("usr-ada", &conversation, &words).await;
    assert_eq!(started.status(), 200);
    // Attached while it runs: it finds the turn through its claim.
    let mut during = a.socket("usr-ada", "", false).await;
    during.init(json!({"conversation_id": conversation})).await;

    for socket in [&mut before, &mut during] {
        // Bounded: a socket that never finds the turn must fail the test,
        // not hang it (the server's pings keep an idle socket alive).
        let frames = tokio::time::timeout(Duration::from_secs(60), socket.turn())
            .await
            .expect("the socket on A follows the turn to its end");
        let last = frames.last().unwrap();
        assert_eq!(last["data"]["chunk"], false);
        assert_eq!(
            last["data"]["text"],
            words.as_str(),
            "the whole reply, on A"
        );
    }
    let on_b = crate::common::events(started).await;
    assert_eq!(streamed_text(&on_b), words);
}

#[tokio::test]
async fn a_tree_edit_on_one_instance_reaches_the_sockets_on_the_other() {
    let Some((_stack, a, b)) = two_instances(0).await else {
        return;
    };
    let conversation = a.conversation("usr-ada", "tree").await;
    let query = format!("?conversation_id={conversation}");
    let mut on_a = a.socket("usr-ada", &query, false).await;
    let mut on_b = b.socket("usr-ada", &query, false).await;
    for socket in [&mut on_a, &mut on_b] {
        assert_eq!(socket.json().await["type"], "session_ready");
        assert_eq!(socket.json().await["type"], "chat_history");
    }
    let patch = json!([{"op": "add", "path": "/label", "value": "root"}]);
    on_a.send(json!({"type": "tree_edit", "data": {"patch": patch, "base_version": 0}}))
        .await;
    let answer = on_a.json().await;
    assert_eq!(answer["type"], "tree_update", "{answer}");
    let heard = tokio::time::timeout(Duration::from_secs(30), on_b.json())
        .await
        .expect("B's socket hears of the edit");
    assert_eq!(heard["type"], "tree_update", "{heard}");
    assert_eq!(heard["data"], answer["data"]);

    // The version is the database's: a stale edit on B is refused.
    on_b.send(json!({"type": "tree_edit", "data": {"patch": patch, "base_version": 0}}))
        .await;
    let refused = on_b.json().await;
    assert_eq!(refused["error"]["code"], "stale_tree", "{refused}");
}

#[tokio::test]
async fn two_instances_starting_at_once_on_a_fresh_database_both_start() {
    // Both run the migrations at once: on PostgreSQL one used to fail on a
    // type the other had just created. Any bus: this is the database's.
    // PostgreSQL only: several instances share a PostgreSQL database (as
    // start-dev.sh insists); two processes on one SQLite file are not a
    // supported set-up.
    if std::env::var(confab_kit::testing::TEST_DATABASE_ENV).is_err() {
        eprintln!("several instances need PostgreSQL; skipped on SQLite");
        return;
    }
    let mut stack = Stack::new();
    let mut settings =
        <chat_service::Settings as confab_kit::settings::ServiceSettings>::defaults().unwrap();
    settings.server.port = 0;
    settings.database = stack.database("chat").await.unwrap();
    settings.bus = stack.bus();
    for round in 0..3 {
        if round > 0 {
            settings.database = stack.database("chat").await.unwrap();
        }
        let (a, b) = futures_util::join!(
            chat_service::build(settings.clone()),
            chat_service::build(settings.clone()),
        );
        assert!(
            a.is_ok() && b.is_ok(),
            "round {round}: {:?} / {:?}",
            a.err(),
            b.err()
        );
    }
}
