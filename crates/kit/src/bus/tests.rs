//! One set of tests for both buses: each runs on the in-process bus, and on
//! NATS when `CONFAB_TEST_NATS_URL` names a server (CI sets it), in a
//! namespace of its own that it removes at the end.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use super::*;

/// Runs `test` on the in-process bus, then on NATS if one is named (the
/// tests of what is built on the bus run on both with it too).
pub(crate) async fn on_both<F, Fut>(test: F)
where
    F: Fn(Bus) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    test(Bus::in_process()).await;
    if let Ok(url) = std::env::var(TEST_NATS_ENV) {
        let namespace = format!("t{}", uuid::Uuid::new_v4().simple());
        let bus = NatsBus::connect(&url, &namespace, Duration::from_secs(5))
            .await
            .expect("the test NATS server answers");
        test(Bus::Nats(bus.clone())).await;
        bus.remove_namespace().await.expect("test streams removed");
    }
}

fn spec(name: &str, subjects: &str) -> StreamSpec {
    StreamSpec {
        name: name.to_owned(),
        subjects: subjects.to_owned(),
        max_age: Duration::from_secs(60),
        max_bytes: 1 << 20,
    }
}

/// The next `n` messages of `subscription`, failing after a generous wait.
async fn next_n(subscription: &mut Subscription, n: usize) -> Vec<Message> {
    let mut messages = Vec::new();
    while messages.len() < n {
        let message = tokio::time::timeout(Duration::from_secs(10), subscription.next())
            .await
            .expect("a message within 10 s")
            .expect("the subscription goes on")
            .expect("a message, not an error");
        messages.push(message);
    }
    messages
}

fn payloads(messages: &[Message]) -> Vec<&[u8]> {
    messages.iter().map(|m| m.payload.as_ref()).collect()
}

#[tokio::test]
async fn a_subscriber_reads_its_subject_from_a_sequence_then_live_in_order() {
    on_both(|bus| async move {
        bus.stream(&spec("turns", "turns.>")).await.unwrap();
        let a1 = bus.publish("turns.a", Bytes::from("a1")).await.unwrap();
        bus.publish("turns.b", Bytes::from("b1")).await.unwrap();
        let a2 = bus.publish("turns.a", Bytes::from("a2")).await.unwrap();
        assert!(a1 < a2);
        assert_eq!(bus.last_seq("turns").await.unwrap(), a2);

        let mut from_start = bus.subscribe("turns", "turns.a", a1).await.unwrap();
        let mut from_second = bus.subscribe("turns", "turns.a", a1 + 1).await.unwrap();
        assert_eq!(payloads(&next_n(&mut from_start, 2).await), [b"a1", b"a2"]);
        let second = next_n(&mut from_second, 1).await;
        assert_eq!((second[0].seq, &*second[0].subject), (a2, "turns.a"));

        let a3 = bus.publish("turns.a", Bytes::from("a3")).await.unwrap();
        bus.publish("turns.b", Bytes::from("b2")).await.unwrap();
        let live = next_n(&mut from_start, 1).await;
        assert_eq!(
            (live[0].seq, live[0].payload.as_ref()),
            (a3, b"a3".as_ref())
        );
        assert_eq!(payloads(&next_n(&mut from_second, 1).await), [b"a3"]);
    })
    .await;
}

/// What a tap passed on so far: sequence and payload.
type Tapped = std::sync::Arc<std::sync::Mutex<Vec<(u64, Bytes)>>>;

async fn tapped_until(tapped: &Tapped, n: usize) -> Vec<(u64, Bytes)> {
    for _ in 0..1000 {
        let seen = tapped.lock().unwrap().clone();
        if seen.len() >= n {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the tap passed on {:?}, not {n} messages",
        tapped.lock().unwrap()
    );
}

#[tokio::test]
async fn a_tap_passes_on_its_filters_messages_from_a_sequence_in_order_until_dropped() {
    on_both(|bus| async move {
        bus.stream(&spec("taps", "taps.>")).await.unwrap();
        bus.publish("taps.a", Bytes::from("before")).await.unwrap();
        let first = bus.publish("taps.a", Bytes::from("a1")).await.unwrap();
        let tapped = Tapped::default();
        let tap = {
            let tapped = tapped.clone();
            bus.tap("taps", "taps.*", first, move |message| {
                tapped
                    .lock()
                    .unwrap()
                    .push((message.seq, message.payload.clone()));
            })
            .await
            .unwrap()
        };
        let b1 = bus.publish("taps.b", Bytes::from("b1")).await.unwrap();
        bus.publish("taps.b.deeper", Bytes::from("not for taps.*"))
            .await
            .unwrap();
        let a2 = bus.publish("taps.a", Bytes::from("a2")).await.unwrap();
        assert_eq!(
            tapped_until(&tapped, 3).await,
            [
                (first, Bytes::from("a1")),
                (b1, Bytes::from("b1")),
                (a2, Bytes::from("a2"))
            ]
        );
        drop(tap);
        bus.publish("taps.a", Bytes::from("after")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(tapped.lock().unwrap().len(), 3, "nothing after the drop");
        let error = bus
            .tap("nowhere", "nowhere.>", 1, |_| {})
            .await
            .err()
            .expect("no such stream");
        assert!(matches!(error, BusError::NoStream(_)), "{error:?}");
    })
    .await;
}

#[tokio::test]
async fn an_ordered_publisher_publishes_in_the_order_given_each_id_once() {
    on_both(|bus| async move {
        bus.stream(&spec("ordered", "ordered.>")).await.unwrap();
        let from = bus.last_seq("ordered").await.unwrap() + 1;
        let publisher = bus.ordered_publisher("ordered.a");
        for (id, payload) in [
            ("1", "one"),
            ("2", "two"),
            ("1", "one again"),
            ("3", "three"),
        ] {
            publisher.publish(id.to_owned(), Bytes::from(payload));
        }
        let mut read = bus.subscribe("ordered", "ordered.a", from).await.unwrap();
        assert_eq!(
            payloads(&next_n(&mut read, 3).await),
            [b"one".as_ref(), b"two", b"three"]
        );
        drop(publisher);
    })
    .await;
}

#[tokio::test]
async fn the_last_sequence_on_a_subject_is_its_newest_message() {
    on_both(|bus| async move {
        bus.stream(&spec("ends", "ends.>")).await.unwrap();
        assert_eq!(bus.last_seq_on("ends", "ends.a").await.unwrap(), None);
        let a = bus.publish("ends.a", Bytes::from("1")).await.unwrap();
        bus.publish("ends.b", Bytes::from("2")).await.unwrap();
        assert_eq!(bus.last_seq_on("ends", "ends.a").await.unwrap(), Some(a));
        let error = bus.last_seq_on("nowhere", "nowhere.a").await.unwrap_err();
        assert!(matches!(error, BusError::NoStream(_)), "{error:?}");
    })
    .await;
}

#[tokio::test]
async fn a_wildcard_subscriber_sees_every_subject_in_one_sequence_order() {
    on_both(|bus| async move {
        bus.stream(&spec("trace", "trace.>")).await.unwrap();
        let mut all = bus.subscribe("trace", "trace.*", 1).await.unwrap();
        let mut published = Vec::new();
        for (subject, payload) in [("trace.x", "1"), ("trace.y", "2"), ("trace.x", "3")] {
            published.push(bus.publish(subject, Bytes::from(payload)).await.unwrap());
        }
        let seen = next_n(&mut all, 3).await;
        assert_eq!(seen.iter().map(|m| m.seq).collect::<Vec<_>>(), published);
        assert_eq!(payloads(&seen), [b"1", b"2", b"3"]);
    })
    .await;
}

#[tokio::test]
async fn a_subscriber_from_past_the_end_reads_only_what_comes_next() {
    on_both(|bus| async move {
        bus.stream(&spec("later", "later.>")).await.unwrap();
        bus.publish("later.k", Bytes::from("old")).await.unwrap();
        let next = bus.last_seq("later").await.unwrap() + 1;
        let mut subscription = bus.subscribe("later", "later.k", next).await.unwrap();
        bus.publish("later.k", Bytes::from("new")).await.unwrap();
        assert_eq!(payloads(&next_n(&mut subscription, 1).await), [b"new"]);
    })
    .await;
}

#[tokio::test]
async fn a_stream_told_to_continue_after_a_sequence_numbers_on_from_there() {
    on_both(|bus| async move {
        bus.stream(&spec("resume", "resume.>")).await.unwrap();
        bus.publish("resume.k", Bytes::from("old")).await.unwrap();
        bus.continue_after("resume", 100).await.unwrap();
        assert_eq!(bus.last_seq("resume").await.unwrap(), 100);
        let mut subscription = bus.subscribe("resume", "resume.k", 1).await.unwrap();
        assert_eq!(
            bus.publish("resume.k", Bytes::from("new")).await.unwrap(),
            101
        );
        // A sequence the stream has passed changes nothing.
        bus.continue_after("resume", 50).await.unwrap();
        assert_eq!(
            bus.publish("resume.k", Bytes::from("newer")).await.unwrap(),
            102
        );
        let read = next_n(&mut subscription, 2).await;
        assert_eq!(payloads(&read), [b"new".as_ref(), b"newer"]);
        assert_eq!(read[0].seq, 101);
    })
    .await;
}

#[tokio::test]
async fn a_message_published_again_with_its_id_is_kept_once() {
    on_both(|bus| async move {
        bus.stream(&spec("once", "once.>")).await.unwrap();
        let first = bus
            .publish_once("once.k", "ev-1", Bytes::from("a"))
            .await
            .unwrap();
        let again = bus
            .publish_once("once.k", "ev-1", Bytes::from("a"))
            .await
            .unwrap();
        assert_eq!(again, first);
        let other = bus
            .publish_once("once.k", "ev-2", Bytes::from("b"))
            .await
            .unwrap();
        assert_eq!(other, first + 1);
        assert_eq!(bus.last_seq("once").await.unwrap(), other);
        let mut subscription = bus.subscribe("once", "once.k", 1).await.unwrap();
        assert_eq!(
            payloads(&next_n(&mut subscription, 2).await),
            [b"a".as_ref(), b"b"]
        );
    })
    .await;
}

#[tokio::test]
async fn publishing_where_no_stream_keeps_the_subject_is_an_error() {
    on_both(|bus| async move {
        let error = bus.publish("nowhere.x", Bytes::new()).await.unwrap_err();
        assert!(matches!(error, BusError::NoStream(_)), "{error:?}");
        let error = bus.subscribe("nowhere", "nowhere.x", 1).await.err();
        assert!(matches!(error, Some(BusError::NoStream(_))), "{error:?}");
    })
    .await;
}

#[tokio::test]
async fn names_with_spaces_or_misplaced_wildcards_are_refused() {
    let bus = Bus::in_process();
    for subject in ["", "a b", "a.>.b", "a..b", "a.*"] {
        let error = bus.publish(subject, Bytes::new()).await.unwrap_err();
        assert!(matches!(error, BusError::InvalidName(_)), "{subject:?}");
    }
    let error = bus.stream(&spec("bad name", "x.>")).await.unwrap_err();
    assert!(matches!(error, BusError::InvalidName(_)));
}

#[tokio::test]
async fn the_oldest_messages_go_beyond_the_size_limit() {
    // In-process only: NATS's own retention is NATS's to test.
    let bus = Bus::in_process();
    let small = StreamSpec {
        max_bytes: 10,
        ..spec("small", "small.>")
    };
    bus.stream(&small).await.unwrap();
    for payload in ["aaaa", "bbbb", "cccc"] {
        bus.publish("small.k", Bytes::from(payload)).await.unwrap();
    }
    let mut subscription = bus.subscribe("small", "small.k", 1).await.unwrap();
    assert_eq!(
        payloads(&next_n(&mut subscription, 2).await),
        [b"bbbb", b"cccc"]
    );
}

#[tokio::test]
async fn a_request_is_answered_by_one_server() {
    on_both(|bus| async move {
        let error = bus
            .request("ctl.nobody", Bytes::new(), Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(matches!(error, BusError::NoResponders(_)), "{error:?}");

        let mut requests = bus.serve("ctl.one").await.unwrap();
        let server = tokio::spawn(async move {
            while let Some(request) = requests.next().await {
                let mut answer = b"re:".to_vec();
                answer.extend_from_slice(&request.payload);
                request.respond(answer.into()).await.unwrap();
            }
        });
        let answer = bus
            .request("ctl.one", Bytes::from("hi"), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(answer.as_ref(), b"re:hi");
        server.abort();
    })
    .await;
}

#[tokio::test]
async fn a_server_that_does_not_answer_times_the_request_out() {
    on_both(|bus| async move {
        let mut requests = bus.serve("ctl.silent").await.unwrap();
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some(request) = requests.next().await {
                held.push(request);
            }
        });
        let error = bus
            .request("ctl.silent", Bytes::new(), Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(error, BusError::TimedOut(_)), "{error:?}");
        server.abort();
    })
    .await;
}

#[tokio::test]
async fn a_key_is_created_once_and_changed_only_from_its_revision() {
    on_both(|bus| async move {
        let bucket = bus.bucket("claims", Duration::from_secs(60)).await.unwrap();
        assert_eq!(bucket.get("conv-1").await.unwrap(), None);
        let first = bucket.create("conv-1", Bytes::from("a")).await.unwrap();
        let error = bucket.create("conv-1", Bytes::from("b")).await.unwrap_err();
        assert!(matches!(error, BusError::Conflict { .. }), "{error:?}");
        let entry = bucket.get("conv-1").await.unwrap().unwrap();
        assert_eq!(
            (entry.value.as_ref(), entry.revision),
            (b"a".as_ref(), first)
        );

        let second = bucket
            .update("conv-1", Bytes::from("c"), first)
            .await
            .unwrap();
        assert!(second > first);
        let stale = bucket.update("conv-1", Bytes::from("d"), first).await;
        assert!(matches!(stale, Err(BusError::Conflict { .. })), "{stale:?}");
        let stale = bucket.delete("conv-1", first).await;
        assert!(matches!(stale, Err(BusError::Conflict { .. })), "{stale:?}");

        bucket.delete("conv-1", second).await.unwrap();
        assert_eq!(bucket.get("conv-1").await.unwrap(), None);
        // A deleted key can be created again, once.
        bucket.create("conv-1", Bytes::from("e")).await.unwrap();
        let again = bucket.create("conv-1", Bytes::from("f")).await;
        assert!(matches!(again, Err(BusError::Conflict { .. })), "{again:?}");
        assert!(bucket.create("conv-2", Bytes::from("x")).await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn concurrent_creates_of_one_key_let_exactly_one_win() {
    on_both(|bus| async move {
        let bucket = bus.bucket("race", Duration::from_secs(60)).await.unwrap();
        let attempts = (0..8).map(|i| {
            let bucket = bucket.clone();
            async move { bucket.create("k", Bytes::from(i.to_string())).await }
        });
        let results = futures_util::future::join_all(attempts).await;
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert!(
            results
                .iter()
                .all(|r| r.is_ok() || matches!(r, Err(BusError::Conflict { .. })))
        );
    })
    .await;
}

#[tokio::test]
async fn an_entry_expires_after_its_last_write() {
    on_both(|bus| async move {
        let bucket = bus.bucket("leases", Duration::from_secs(1)).await.unwrap();
        bucket.create("lease", Bytes::from("held")).await.unwrap();
        // Poll, not sleep-and-assert: expiry happens some time after the TTL.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while bucket.get("lease").await.unwrap().is_some() {
            assert!(tokio::time::Instant::now() < deadline, "never expired");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bucket
            .create("lease", Bytes::from("taken over"))
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn an_entry_of_a_bucket_without_ttl_stays() {
    on_both(|bus| async move {
        let bucket = bus.bucket("claims", Duration::ZERO).await.unwrap();
        bucket.create("claim", Bytes::from("held")).await.unwrap();
        // Two seconds: a bucket whose TTL were taken as zero would have
        // dropped it at once, a short one long since.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let entry = bucket.get("claim").await.unwrap().expect("still there");
        assert_eq!(entry.value.as_ref(), b"held");
    })
    .await;
}

#[tokio::test]
async fn any_string_escaped_is_a_valid_key_of_its_own() {
    on_both(|bus| async move {
        let bucket = bus
            .bucket("escaped", Duration::from_secs(60))
            .await
            .unwrap();
        let raws = [
            "usr-1_a", "", ":", "a.b", "a b", "*", ">", "é", ":2e", "a:2eb", "a.b.",
        ];
        for raw in raws {
            let key = escape_token(raw);
            bucket.create(&key, Bytes::from(raw)).await.unwrap();
        }
        // Each came back as its own, none overwrote another.
        for raw in raws {
            let entry = bucket.get(&escape_token(raw)).await.unwrap().unwrap();
            assert_eq!(entry.value.as_ref(), raw.as_bytes());
        }
        assert_eq!(escape_token("usr-1_a"), "usr-1_a", "ids stay as they are");
    })
    .await;
}

#[test]
fn filters_match_as_nats_does() {
    assert!(matches("a.>", "a.b.c"));
    assert!(!matches("a.>", "a"));
    assert!(matches("a.*.c", "a.b.c"));
    assert!(!matches("a.*", "a.b.c"));
    assert!(matches("a.b", "a.b"));
    assert!(!matches("a.b", "a.b.c"));
}

#[tokio::test]
async fn a_connected_bus_is_ready() {
    on_both(|bus| async move {
        bus.check().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn connecting_to_a_server_that_is_not_there_fails_and_names_it() {
    // A port nothing listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = BusSettings {
        url: Some(format!("nats://user:secret@127.0.0.1:{port}")),
        timeout_secs: 2,
        ..BusSettings::default()
    };
    let error = Bus::connect(&settings).await.unwrap_err().to_string();
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    assert!(
        !error.contains("secret"),
        "the password is never shown: {error}"
    );
}
