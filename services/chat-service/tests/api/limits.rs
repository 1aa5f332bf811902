//! What one user may keep busy (DESIGN §14): turns in flight and turn
//! starts per minute, one budget over every entry point (REST, SSE, unified,
//! OpenAI, both WebSocket dialects) and every instance (DESIGN §15), and
//! open chat sockets. Each test drives the real service over HTTP and
//! WebSocket, in front of the real demo agents whose builtin model is slowed
//! down so that turns stay in flight.
//!
//! The tests of two instances run on NATS only: the in-process bus joins
//! the parts of one process, not two instances. CI runs them with
//! `CONFAB_TEST_NATS_URL` set; without it they say so and pass.

use std::time::Duration;

use confab_kit::bus::TEST_NATS_ENV;
use confab_kit::testing::Stack;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::process::Process;
use crate::common::ws::{Envelope, Frame, Ws};
use crate::common::{TestApp, item_ids, start_agents, start_slow_agents};

/// Each answer of the builtin model waits this long: a math turn (a tool
/// call, then the answer) stays in flight for twice that.
const SLOW_MS: u64 = 1500;

const QUESTION: &str = "What is 6 * 7?";

/// `Retry-After` of a 429 that says `rate_limited`, in seconds.
async fn rate_limited(response: reqwest::Response) -> u64 {
    if response.status() != 429 {
        let status = response.status();
        panic!(
            "{status} where 429 was expected: {}",
            response.text().await.unwrap()
        );
    }
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    retry_after
}

/// Starts `n` turns of `user`, each in a new conversation; their streams.
async fn fill(chat: &TestApp, user: &str, n: usize) -> Vec<reqwest::Response> {
    let mut streams = Vec::new();
    for _ in 0..n {
        let conversation = chat.conversation(user, "math").await;
        let stream = chat.stream(user, &conversation, QUESTION).await;
        assert_eq!(stream.status(), 200, "turns up to the cap start");
        streams.push(stream);
    }
    streams
}

/// The ids of the user's conversations.
async fn conversations(chat: &TestApp, user: &str) -> Vec<String> {
    let page: Value = chat.list(user, "limit=100").await.json().await.unwrap();
    item_ids(&page)
}

#[tokio::test]
async fn the_fifth_turn_in_flight_of_a_user_is_refused_on_every_http_entry_point_while_another_user_is_served()
 {
    let mut stack = Stack::new();
    let agents = start_slow_agents(SLOW_MS, 0, &mut stack).await;
    let chat = TestApp::start(&agents, &mut stack, |_| {}).await;
    let mut running = fill(&chat, "usr-ada", 4).await;
    let fifth = chat.conversation("usr-ada", "math").await;

    let plain = chat.post_message("usr-ada", &fifth, QUESTION).await;
    rate_limited(plain).await;
    rate_limited(chat.stream("usr-ada", &fifth, QUESTION).await).await;
    let unified = chat
        .unified("usr-ada", json!({"message": QUESTION}), None)
        .await;
    rate_limited(unified).await;
    let completion = json!({"model": "math", "messages": [{"role": "user", "content": QUESTION}]});
    rate_limited(chat.completions("usr-ada", completion, None).await).await;

    // Nothing was written: no message, no conversation made by a first
    // message.
    assert!(chat.messages("usr-ada", &fifth).await.is_empty());
    assert_eq!(conversations(&chat, "usr-ada").await.len(), 5);

    // Another user is served meanwhile.
    let bobs = chat.conversation("usr-bob", "math").await;
    let events = chat.turn("usr-bob", &bobs, QUESTION).await;
    assert_eq!(events.last().unwrap()["status"], "complete");

    // Once one of her turns has ended, she may start another.
    let first = crate::common::events(running.remove(0)).await;
    assert_eq!(first.last().unwrap()["type"], "done");
    assert_eq!(chat.stream("usr-ada", &fifth, QUESTION).await.status(), 200);
}

#[tokio::test]
async fn the_fifth_turn_in_flight_of_a_user_is_an_error_frame_in_the_envelope_dialect() {
    let mut stack = Stack::new();
    let agents = start_slow_agents(SLOW_MS, 0, &mut stack).await;
    let chat = TestApp::start(&agents, &mut stack, |_| {}).await;
    // Turns started over HTTP count against the same budget.
    let _running = fill(&chat, "usr-ada", 4).await;

    let mut ws = chat.socket("usr-ada", "", false).await;
    let ready = ws.init(json!({"agent_id": "math"})).await;
    let conversation = ready["session_id"].as_str().unwrap().to_owned();
    ws.send(json!({"type": "user_prompt", "data": {"prompt": QUESTION}}))
        .await;
    let refused = ws.json().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["error"]["code"], "rate_limited");
    assert!(refused["error"]["retry_after"].as_u64().unwrap() >= 1);
    assert_eq!(
        refused["data"]["retry_after"],
        refused["error"]["retry_after"]
    );
    assert!(chat.messages("usr-ada", &conversation).await.is_empty());

    let mut bobs = chat.socket("usr-bob", "", false).await;
    bobs.init(json!({"agent_id": "math"})).await;
    bobs.send(json!({"type": "user_prompt", "data": {"prompt": QUESTION}}))
        .await;
    let frames = bobs.turn().await;
    assert_eq!(frames.last().unwrap()["data"]["status"], "complete");
}

#[tokio::test]
async fn the_fifth_turn_in_flight_over_compact_sockets_is_an_error_frame_and_creates_nothing() {
    let mut stack = Stack::new();
    let agents = start_slow_agents(SLOW_MS, 0, &mut stack).await;
    let chat = TestApp::start(&agents, &mut stack, |_| {}).await;
    // The attack: every compact socket opens a conversation and a turn.
    let mut sockets = Vec::new();
    for _ in 0..4 {
        let mut ws = chat.socket("usr-ada", "", true).await;
        assert_eq!(ws.json().await["type"], "welcome");
        ws.send(json!({"type": "message", "text": QUESTION})).await;
        sockets.push(ws);
    }
    // Until the four turns have begun (their user messages are written).
    for _ in 0..200 {
        let started = conversations(&chat, "usr-ada").await;
        let mut begun = 0;
        for id in &started {
            begun += usize::from(!chat.messages("usr-ada", id).await.is_empty());
        }
        if begun == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let mut fifth = chat.socket("usr-ada", "", true).await;
    assert_eq!(fifth.json().await["type"], "welcome");
    fifth
        .send(json!({"type": "message", "text": QUESTION}))
        .await;
    let refused = fifth.json().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "rate_limited");
    assert!(refused["retry_after"].as_u64().unwrap() >= 1);
    assert_eq!(
        conversations(&chat, "usr-ada").await.len(),
        4,
        "the refused message made no conversation"
    );

    let mut bobs = chat.socket("usr-bob", "", true).await;
    assert_eq!(bobs.json().await["type"], "welcome");
    bobs.send(json!({"type": "message", "text": QUESTION}))
        .await;
    let frames = bobs.until(|f| f["type"] != "token").await;
    let done = frames.last().unwrap();
    assert_eq!(done["type"], "done", "{frames:?}");
    assert_eq!(done["result"]["status"], "complete");
}

#[tokio::test]
async fn turn_starts_over_the_rate_are_refused_with_retry_after_on_http_and_sockets() {
    let mut stack = Stack::new();
    let agents = start_agents(0, &mut stack).await;
    let chat = TestApp::start(&agents, &mut stack, |settings| {
        settings.limits.turns_per_minute = 2;
    })
    .await;
    let conversation = chat.conversation("usr-ada", "math").await;
    for _ in 0..2 {
        let events = chat.turn("usr-ada", &conversation, QUESTION).await;
        assert_eq!(events.last().unwrap()["status"], "complete");
    }

    let retry_after = rate_limited(chat.stream("usr-ada", &conversation, QUESTION).await).await;
    // Two a minute: one more every 30 s.
    assert!(retry_after <= 30, "{retry_after}");

    let mut ws = chat
        .socket(
            "usr-ada",
            &format!("?conversation_id={conversation}"),
            false,
        )
        .await;
    assert_eq!(ws.json().await["type"], "session_ready");
    assert_eq!(ws.json().await["type"], "chat_history");
    ws.send(json!({"type": "user_prompt", "data": {"prompt": QUESTION}}))
        .await;
    let refused = ws.json().await;
    assert_eq!(refused["error"]["code"], "rate_limited", "{refused}");
    assert!((1..=30).contains(&refused["error"]["retry_after"].as_u64().unwrap()));
    assert_eq!(chat.messages("usr-ada", &conversation).await.len(), 4);

    let bobs = chat.conversation("usr-bob", "math").await;
    let events = chat.turn("usr-bob", &bobs, QUESTION).await;
    assert_eq!(events.last().unwrap()["status"], "complete");
}

/// The close a socket gets before any frame, if it is closed.
async fn closed_at_once(ws: &mut Ws) -> Option<(u16, String)> {
    match ws.frame().await {
        Frame::Closed(close) => close,
        Frame::Json(frame) => panic!("a frame where a close was expected: {frame}"),
    }
}

#[tokio::test]
async fn the_seventeenth_chat_socket_of_a_user_is_closed_with_1008() {
    let mut stack = Stack::new();
    let agents = start_agents(0, &mut stack).await;
    let chat = TestApp::start(&agents, &mut stack, |_| {}).await;
    let mut open = Vec::new();
    for _ in 0..16 {
        let mut ws = chat.socket("usr-ada", "", true).await;
        assert_eq!(ws.json().await["type"], "welcome");
        open.push(ws);
    }

    for compact in [true, false] {
        let mut over = chat.socket("usr-ada", "", compact).await;
        let (code, reason) = closed_at_once(&mut over).await.unwrap();
        assert_eq!(code, 1008);
        assert!(reason.contains("at most 16"), "{reason}");
    }

    let mut bobs = chat.socket("usr-bob", "", true).await;
    assert_eq!(
        bobs.json().await["type"],
        "welcome",
        "another user is not affected"
    );

    // A socket that goes away without a goodbye gives its place back.
    open.pop().unwrap().abandon();
    for attempt in 0.. {
        let mut again = chat.socket("usr-ada", "", true).await;
        match again.frame().await {
            Frame::Json(frame) => {
                assert_eq!(frame["type"], "welcome");
                break;
            }
            Frame::Closed(close) => {
                assert!(attempt < 100, "the place was never given back: {close:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Whether two instances can share a bus here (see the module's doc).
fn shared_bus() -> bool {
    let named = std::env::var(TEST_NATS_ENV).is_ok();
    if !named {
        eprintln!("{TEST_NATS_ENV} is not set: two instances need NATS; skipped");
    }
    named
}

#[tokio::test]
async fn a_users_turns_in_flight_are_capped_across_instances() {
    if !shared_bus() {
        return;
    }
    let mut stack = Stack::new();
    let agents = start_slow_agents(SLOW_MS, 0, &mut stack).await;
    let a = TestApp::start(&agents, &mut stack, |settings| {
        settings.limits.turns_in_flight = 2;
    })
    .await;
    let b = a.another(&mut stack).await;
    let mut running = fill(&a, "usr-ada", 1).await;
    running.extend(fill(&b, "usr-ada", 1).await);

    for chat in [&a, &b] {
        let third = chat.conversation("usr-ada", "math").await;
        rate_limited(chat.stream("usr-ada", &third, QUESTION).await).await;
        assert!(chat.messages("usr-ada", &third).await.is_empty());
    }
    // Another user is served meanwhile, on either.
    let bobs = b.conversation("usr-bob", "math").await;
    let events = b.turn("usr-bob", &bobs, QUESTION).await;
    assert_eq!(events.last().unwrap()["status"], "complete");

    // Once her turn on A has ended, she may start another on B.
    let first = crate::common::events(running.remove(0)).await;
    assert_eq!(first.last().unwrap()["type"], "done");
    let next = b.conversation("usr-ada", "math").await;
    assert_eq!(b.stream("usr-ada", &next, QUESTION).await.status(), 200);
}

#[tokio::test]
async fn a_users_turn_starts_per_minute_are_counted_across_instances() {
    if !shared_bus() {
        return;
    }
    let mut stack = Stack::new();
    let agents = start_agents(0, &mut stack).await;
    let a = TestApp::start(&agents, &mut stack, |settings| {
        settings.limits.turns_per_minute = 2;
    })
    .await;
    let b = a.another(&mut stack).await;
    let conversation = a.conversation("usr-ada", "math").await;
    for chat in [&a, &b] {
        let events = chat.turn("usr-ada", &conversation, QUESTION).await;
        assert_eq!(events.last().unwrap()["status"], "complete");
    }

    for chat in [&a, &b] {
        let retry_after = rate_limited(chat.stream("usr-ada", &conversation, QUESTION).await).await;
        // Two a minute: one more every 30 s.
        assert!(retry_after <= 30, "{retry_after}");
    }
    assert_eq!(a.messages("usr-ada", &conversation).await.len(), 4);
    let bobs = b.conversation("usr-bob", "math").await;
    let events = b.turn("usr-bob", &bobs, QUESTION).await;
    assert_eq!(events.last().unwrap()["status"], "complete");
}

/// chat-service as a process of its own, with `settings`' database, bus,
/// math agent and cap on turns in flight.
async fn start_process(settings: &chat_service::Settings) -> Process {
    let bus = &settings.bus;
    Process::start(&[
        ("DATABASE_URL", settings.database.url.clone()),
        ("CONFAB__BUS__URL", bus.url.clone().unwrap()),
        ("CONFAB__BUS__NAMESPACE", bus.namespace.clone()),
        (
            "CONFAB__AGENTS__MATH__URL",
            settings.agents["math"].url.clone(),
        ),
        (
            "CONFAB__LIMITS__TURNS_IN_FLIGHT",
            settings.limits.turns_in_flight.to_string(),
        ),
    ])
    .await
}

#[tokio::test]
async fn the_turns_of_a_killed_instance_stop_counting_against_the_cap_a_lease_later() {
    if !shared_bus() {
        return;
    }
    let mut stack = Stack::new();
    // Each answer takes 20 s: her turn on A is surely running when B is
    // asked, however loaded the machine.
    let agents = start_slow_agents(20_000, 0, &mut stack).await;
    let mut settings = None;
    let b = TestApp::start(&agents, &mut stack, |tweaked| {
        tweaked.limits.turns_in_flight = 1;
        settings = Some(tweaked.clone());
    })
    .await;
    let a = start_process(&settings.unwrap()).await;

    // Her one turn runs on A.
    let conversation = b.conversation("usr-ada", "math").await;
    let running = b
        .http
        .post(format!(
            "{}/chat/conversations/{conversation}/messages/stream",
            a.url
        ))
        .header("x-service-token", crate::common::SERVICE_TOKEN)
        .header("x-user-id", "usr-ada")
        .json(&json!({"message": QUESTION}))
        .send()
        .await
        .unwrap();
    assert_eq!(running.status(), 200);
    let other = b.conversation("usr-ada", "math").await;
    rate_limited(b.stream("usr-ada", &other, QUESTION).await).await;

    a.kill(); // mid-turn, SIGKILL: it gives nothing back
    drop(running);
    // Its place lapses with its lease ([chat] turn_lease_secs, 5 s), and
    // she may start a turn on B.
    for attempt in 0.. {
        let response = b.stream("usr-ada", &other, QUESTION).await;
        if response.status() == 200 {
            let mut events = Box::pin(response.bytes_stream().eventsource());
            let first = events.next().await.unwrap().unwrap();
            let first: Value = serde_json::from_str(&first.data).unwrap();
            assert_eq!(first["type"], "message_start", "{first}");
            break;
        }
        assert_eq!(response.status(), 429);
        assert!(attempt < 120, "the dead instance's turn still counts");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
