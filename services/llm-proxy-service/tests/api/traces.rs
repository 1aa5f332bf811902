//! The live trace WebSocket: isolation between users and agents, replay with
//! `since=` (from memory and, after a restart, from the database), and a
//! subscriber that stops reading.

use confab_kit::testing::get_as_service;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::buses::on_both_buses;
use crate::common::{MATH_KEY, Proxy, SERVICE_TOKEN, TEXT_KEY, sse_data, start_streamed};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Subscribes as the gateway would: service token plus the user's identity.
async fn subscribe(proxy: &Proxy, agent: &str, user: &str, query: &str) -> Result<Socket, u16> {
    let mut request = proxy
        .ws_url(&format!("/ws/trace/{agent}?{query}"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("x-service-token", SERVICE_TOKEN.parse().unwrap());
    request
        .headers_mut()
        .insert("x-user-id", user.parse().unwrap());
    if user.starts_with("usr-admin") {
        request
            .headers_mut()
            .insert("x-user-role", "admin".parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(err) => panic!("{err}"),
    }
}

/// Reads frames until the `live` frame; returns the replayed events.
async fn until_live(socket: &mut Socket) -> Vec<Value> {
    let mut replayed = Vec::new();
    loop {
        let frame = next_frame(socket)
            .await
            .expect("the socket closed before the live frame");
        match frame["type"].as_str() {
            Some("live") => return replayed,
            _ => replayed.push(frame["event"].clone()),
        }
    }
}

async fn next_frame(socket: &mut Socket) -> Option<Value> {
    loop {
        match socket.next().await? {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(text.as_str()).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

async fn events(socket: &mut Socket, n: usize) -> Vec<Value> {
    let mut events = Vec::new();
    while events.len() < n {
        let frame = next_frame(socket).await.expect("the socket closed early");
        events.push(frame["event"].clone());
    }
    events
}

/// A streamed call for `user` through `key`'s agent; every such call makes
/// five events: request, three deltas, response. Its id.
async fn call(proxy: &Proxy, key: &str, user: &str) -> String {
    let prompt = "alpha beta gamma";
    let (id, response) = start_streamed(&proxy.http, &proxy.url, key, user, prompt).await;
    sse_data(response).await;
    id
}

const EVENTS_PER_CALL: usize = 5;

/// The stored events of one agent and user, as `GET /traces` shows them.
async fn stored(proxy: &Proxy, agent: &str, user: &str, expected: usize) -> Vec<Value> {
    for _ in 0..400 {
        let url = format!("{}/traces?agent_id={agent}&limit=1000", proxy.url);
        let page = get_as_service(&proxy.http, &url, SERVICE_TOKEN, user).await;
        let items = page["items"].as_array().unwrap().clone();
        if items.len() >= expected {
            return items;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the events of {user} for {agent} were not all stored");
}

fn seqs(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["seq"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn each_subscriber_receives_exactly_its_own_events_in_order() {
    on_both_buses(|bus| async move {
        let proxy = Proxy::start_on_bus(&bus, |_| {}).await;
        let pairs = [
            ("math", MATH_KEY, "usr-ada"),
            ("text", TEXT_KEY, "usr-ada"),
            ("math", MATH_KEY, "usr-bob"),
            ("text", TEXT_KEY, "usr-bob"),
        ];
        let mut sockets = Vec::new();
        for (agent, _, user) in pairs {
            let mut socket = subscribe(&proxy, agent, user, "").await.unwrap();
            assert!(until_live(&mut socket).await.is_empty());
            sockets.push(socket);
        }
        const CALLS: usize = 3;
        let calls: Vec<_> = (0..CALLS)
            .flat_map(|_| pairs.iter().map(|(_, key, user)| call(&proxy, key, user)))
            .collect();
        futures_util::future::join_all(calls).await;

        for ((agent, _, user), socket) in pairs.iter().zip(sockets.iter_mut()) {
            let received = events(socket, CALLS * EVENTS_PER_CALL).await;
            for event in &received {
                assert_eq!(event["agent_id"], *agent);
                assert_eq!(event["user_id"], *user);
            }
            let seqs = seqs(&received);
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
            let stored = stored(&proxy, agent, user, CALLS * EVENTS_PER_CALL).await;
            assert_eq!(
                seqs,
                self::seqs(&stored),
                "live events are exactly the stored ones"
            );
            let first_call = &received[0]["call_id"];
            let kinds: Vec<&str> = received
                .iter()
                .filter(|e| &e["call_id"] == first_call)
                .map(|e| e["kind"].as_str().unwrap())
                .collect();
            assert_eq!(
                kinds,
                [
                    "llm.request",
                    "llm.delta",
                    "llm.delta",
                    "llm.delta",
                    "llm.response"
                ]
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_reconnect_with_since_has_no_gap_and_no_duplicate() {
    on_both_buses(|bus| async move {
        let proxy = Proxy::start_on_bus(&bus, |_| {}).await;
        let mut socket = subscribe(&proxy, "math", "usr-ada", "").await.unwrap();
        until_live(&mut socket).await;
        for _ in 0..3 {
            call(&proxy, MATH_KEY, "usr-ada").await;
            call(&proxy, MATH_KEY, "usr-bob").await;
        }
        let first = events(&mut socket, 7).await;
        socket.close(None).await.unwrap();
        for _ in 0..3 {
            call(&proxy, MATH_KEY, "usr-ada").await;
        }
        let since = first.last().unwrap()["seq"].as_i64().unwrap();
        let mut socket = subscribe(&proxy, "math", "usr-ada", &format!("since={since}"))
            .await
            .unwrap();
        let replayed = until_live(&mut socket).await;
        call(&proxy, MATH_KEY, "usr-ada").await;
        let live = events(&mut socket, EVENTS_PER_CALL).await;

        let all: Vec<Value> = first.into_iter().chain(replayed).chain(live).collect();
        let stored = stored(&proxy, "math", "usr-ada", 7 * EVENTS_PER_CALL).await;
        assert_eq!(seqs(&all), seqs(&stored));
    })
    .await;
}

#[tokio::test]
async fn after_a_restart_since_replays_from_the_database() {
    on_both_buses(|bus| async move {
        let proxy = Proxy::start_on_bus(&bus, |_| {}).await;
        for _ in 0..4 {
            call(&proxy, MATH_KEY, "usr-ada").await;
        }
        let before = stored(&proxy, "math", "usr-ada", 4 * EVENTS_PER_CALL).await;
        let database = proxy.stop().await;

        let proxy = Proxy::start_with(database, &bus.after_restart(), |_| {}).await;
        let since = before[2]["seq"].as_i64().unwrap();
        let mut socket = subscribe(&proxy, "math", "usr-ada", &format!("since={since}"))
            .await
            .unwrap();
        let replayed = until_live(&mut socket).await;
        assert_eq!(seqs(&replayed), seqs(&before[3..]));
        call(&proxy, MATH_KEY, "usr-ada").await;
        let live = events(&mut socket, EVENTS_PER_CALL).await;
        assert!(
            live[0]["seq"].as_i64().unwrap() > before.last().unwrap()["seq"].as_i64().unwrap(),
            "numbering continues after a restart"
        );
    })
    .await;
}

#[tokio::test]
async fn a_stalled_subscriber_never_delays_another() {
    on_both_buses(|bus| async move {
        let proxy = Proxy::start_on_bus(&bus, |settings| settings.trace.subscriber_buffer = 64).await;
        let mut stalled = subscribe(&proxy, "math", "usr-ada", "").await.unwrap();
        until_live(&mut stalled).await;
        let mut reader = subscribe(&proxy, "math", "usr-ada", "").await.unwrap();
        until_live(&mut reader).await;
        // Each call's request, delta and response events carry a 64 KiB word:
        // 200 calls (38 MiB) are far more than the stalled subscriber's socket
        // buffers and queues hold.
        const CALLS: usize = 200;
        let reading = tokio::spawn(async move {
            let received = events(&mut reader, CALLS * 3).await;
            (reader, received)
        });
        let word = "x".repeat(64 * 1024);
        for _ in 0..CALLS {
            let response = proxy
                .completions(Some(MATH_KEY))
                .json(&json!({"model": "builtin", "stream": true, "messages": [{"role": "user", "content": word}]}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.bytes().await.unwrap();
        }
        let (_reader, received) = reading.await.unwrap();
        assert_eq!(received.len(), CALLS * 3);
        assert!(seqs(&received).windows(2).all(|w| w[0] < w[1]));

        // The stalled subscriber got what fitted in its buffers, then was told
        // to reconnect.
        let mut close = None;
        while let Some(message) = stalled.next().await {
            if let Ok(Message::Close(frame)) = message {
                close = frame.map(|f| u16::from(f.code));
                break;
            }
        }
        assert_eq!(close, Some(1013));
    })
    .await;
}

#[tokio::test]
async fn only_an_admin_may_follow_every_user() {
    on_both_buses(|bus| async move {
        let proxy = Proxy::start_on_bus(&bus, |_| {}).await;
        assert_eq!(
            subscribe(&proxy, "math", "usr-ada", "all_users=true")
                .await
                .err(),
            Some(403)
        );
        let mut admin = subscribe(&proxy, "math", "usr-admin-1", "all_users=true")
            .await
            .unwrap();
        until_live(&mut admin).await;
        call(&proxy, MATH_KEY, "usr-ada").await;
        call(&proxy, MATH_KEY, "usr-bob").await;
        let users: Vec<Value> = events(&mut admin, 2 * EVENTS_PER_CALL)
            .await
            .iter()
            .map(|e| e["user_id"].clone())
            .collect();
        assert!(users.contains(&json!("usr-ada")) && users.contains(&json!("usr-bob")));
    })
    .await;
}

#[tokio::test]
async fn a_subscriber_without_identity_is_refused() {
    let proxy = Proxy::start(|_| {}).await;
    let request = proxy
        .ws_url("/ws/trace/math")
        .into_client_request()
        .unwrap();
    let refused = tokio_tungstenite::connect_async(request).await.unwrap_err();
    assert!(matches!(refused, tokio_tungstenite::tungstenite::Error::Http(r) if r.status() == 401));
    let request = proxy
        .ws_url("/ws/trace/math?token=not-a-token")
        .into_client_request()
        .unwrap();
    let refused = tokio_tungstenite::connect_async(request).await.unwrap_err();
    assert!(matches!(refused, tokio_tungstenite::tungstenite::Error::Http(r) if r.status() == 401));
}

/// A subscription that is refused: its status, `Retry-After` and JSON body.
async fn refused(proxy: &Proxy, agent: &str, user: &str) -> (u16, Option<u64>, Value) {
    let mut request = proxy
        .ws_url(&format!("/ws/trace/{agent}"))
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert("x-service-token", SERVICE_TOKEN.parse().unwrap());
    headers.insert("x-user-id", user.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse().unwrap());
            let body = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            (response.status().as_u16(), retry_after, body)
        }
        Ok(_) => panic!("the subscription was accepted"),
        Err(err) => panic!("{err}"),
    }
}

#[tokio::test]
async fn the_ninth_trace_subscriber_of_a_user_is_refused_with_429() {
    let proxy = Proxy::start(|_| {}).await;
    let mut open = Vec::new();
    for agent in ["math", "text"].repeat(4) {
        let mut socket = subscribe(&proxy, agent, "usr-ada", "").await.unwrap();
        until_live(&mut socket).await;
        open.push(socket);
    }

    let (status, retry_after, body) = refused(&proxy, "math", "usr-ada").await;
    assert_eq!(status, 429);
    assert!(retry_after.unwrap() >= 1);
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 8"),
        "{body}"
    );

    let mut bobs = subscribe(&proxy, "math", "usr-bob", "").await.unwrap();
    until_live(&mut bobs).await;
    call(&proxy, MATH_KEY, "usr-ada").await;
    assert_eq!(
        events(&mut open[0], EVENTS_PER_CALL).await.len(),
        EVENTS_PER_CALL
    );

    // A socket that goes away without a goodbye gives its place back.
    drop(open.pop());
    for attempt in 0.. {
        match subscribe(&proxy, "math", "usr-ada", "").await {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(status, 429);
                assert!(attempt < 100, "the place was never given back");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Every event a socket has been sent and not yet read, waiting until it has
/// been quiet for a while.
async fn drain(socket: &mut Socket) -> Vec<Value> {
    let mut events = Vec::new();
    let quiet = std::time::Duration::from_millis(500);
    while let Ok(Some(frame)) = tokio::time::timeout(quiet, next_frame(socket)).await {
        events.push(frame["event"].clone());
    }
    events
}

#[tokio::test]
async fn subscribers_joining_while_events_pour_in_get_each_event_once_and_in_order() {
    on_both_buses(|bus| async move {
        let proxy = Proxy::start_on_bus(&bus, |settings| {
            if let Some(llm_proxy_service::providers::ProviderSettings::Builtin(builtin)) =
                settings.providers.get_mut("builtin")
            {
                builtin.chunk_delay_ms = 5;
            }
        })
        .await;
        const WORKERS: usize = 3;
        const CALLS: usize = 5;
        let calling = futures_util::future::join_all((0..WORKERS).flat_map(|_| {
            ["usr-ada", "usr-bob"].map(|user| {
                let proxy = &proxy;
                async move {
                    for _ in 0..CALLS {
                        call(proxy, MATH_KEY, user).await;
                    }
                }
            })
        }));
        // Replaying from the start, live only, and an admin's all-users
        // subscription, joining one after another while the calls run.
        let joining = async {
            let mut sockets = Vec::new();
            for (user, query) in [
                ("usr-ada", "since=0"),
                ("usr-admin-1", "all_users=true&since=0"),
                ("usr-ada", ""),
                ("usr-ada", "since=0"),
                ("usr-admin-1", "all_users=true&since=0"),
                ("usr-ada", ""),
            ] {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let mut socket = subscribe(&proxy, "math", user, query).await.unwrap();
                let replayed = until_live(&mut socket).await;
                sockets.push((user, query, socket, replayed));
            }
            sockets
        };
        let (_, sockets) = tokio::join!(calling, joining);

        let total = WORKERS * CALLS * EVENTS_PER_CALL;
        let ada = seqs(&stored(&proxy, "math", "usr-ada", total).await);
        let mut everyone = ada.clone();
        everyone.extend(seqs(&stored(&proxy, "math", "usr-bob", total).await));
        everyone.sort_unstable();
        for (user, query, mut socket, replayed) in sockets {
            let received: Vec<i64> = seqs(&replayed)
                .into_iter()
                .chain(seqs(&drain(&mut socket).await))
                .collect();
            let expected = if user == "usr-ada" { &ada } else { &everyone };
            if query.contains("since=0") {
                assert_eq!(&received, expected, "{user} {query}");
            } else {
                // From where it joined on, every event once, in order.
                let joined = expected.len() - received.len();
                assert_eq!(received, expected[joined..], "{user} {query}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_subscriber_on_one_instance_sees_the_calls_of_another_and_replays_them_after_it_restarts()
{
    on_both_buses(|bus| async move {
        let a = Proxy::start_on_bus(&bus, |_| {}).await;
        let b = Proxy::start_with(a.database(), &bus, |_| {}).await;
        let mut on_a = subscribe(&a, "math", "usr-ada", "").await.unwrap();
        until_live(&mut on_a).await;
        let mut through_b = Vec::new();
        for _ in 0..2 {
            through_b.push(call(&b, MATH_KEY, "usr-ada").await);
            call(&a, MATH_KEY, "usr-ada").await;
            call(&b, MATH_KEY, "usr-bob").await;
        }
        let seen = events(&mut on_a, 4 * EVENTS_PER_CALL).await;
        assert!(seen.iter().all(|e| e["user_id"] == "usr-ada"));
        for id in &through_b {
            let kinds = seen.iter().filter(|e| e["call_id"] == id.as_str()).count();
            assert_eq!(kinds, EVENTS_PER_CALL, "the events of {id}, made through B");
        }
        let stored_before = stored(&a, "math", "usr-ada", 4 * EVENTS_PER_CALL).await;
        assert_eq!(seqs(&seen), seqs(&stored_before), "one order, each once");

        // B restarts; A's subscriber goes on seeing what B's calls do.
        let database = b.stop().await;
        let b = Proxy::start_with(database, &bus, |_| {}).await;
        through_b.push(call(&b, MATH_KEY, "usr-ada").await);
        let after_restart = events(&mut on_a, EVENTS_PER_CALL).await;
        assert!(
            after_restart
                .iter()
                .all(|e| e["call_id"] == through_b.last().unwrap().as_str())
        );
        let everything: Vec<Value> = seen.iter().chain(&after_restart).cloned().collect();
        let stored_after = stored(&a, "math", "usr-ada", 5 * EVENTS_PER_CALL).await;
        assert_eq!(seqs(&everything), seqs(&stored_after));

        // since= replays the same events on either instance: no gap, no
        // duplicate, across the instances and B's restart.
        let since = seen[7]["seq"].as_i64().unwrap();
        for proxy in [&a, &b] {
            let mut socket = subscribe(proxy, "math", "usr-ada", &format!("since={since}"))
                .await
                .unwrap();
            let replayed = until_live(&mut socket).await;
            assert_eq!(seqs(&replayed), seqs(&everything[8..]));
            assert_eq!(replayed, everything[8..], "replayed as they were sent live");
        }
    })
    .await;
}
