//! Seed 000's chat playground on `/chat/sessions…` (issue 17): the same
//! conversations as `/chat/conversations…`, every path with or without a
//! trailing slash, streamed text as `text_token`, and a GET stream that
//! follows the conversation's turns for an `EventSource`, resumable across
//! turns with `Last-Event-ID`.

use std::time::Duration;

use confab_kit::testing::{Stack, assert_event_stream};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{TestApp, start_agents};

const QUESTION: &str = "What is 6 * 7?";

/// Longest wait for any one event of a follower.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// An SSE event as (id, JSON).
type Event = (String, Value);

impl TestApp {
    fn session(&self, method: Method, path: &str, user: &str) -> reqwest::RequestBuilder {
        self.request(method, &format!("/chat/sessions{path}"), user)
    }

    /// `POST /chat/sessions/{id}/messages/stream`: a whole turn's events.
    async fn session_turn(&self, user: &str, session: &str, message: &str) -> Vec<Event> {
        let response = self
            .session(Method::POST, &format!("/{session}/messages/stream"), user)
            .json(&json!({"message": message}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        collect(response).await
    }

    /// `GET /chat/sessions/{id}/messages/stream`, with `Last-Event-ID`.
    async fn follow(
        &self,
        user: &str,
        session: &str,
        last_event_id: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.session(Method::GET, &format!("/{session}/messages/stream"), user);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        request.send().await.unwrap()
    }

    /// A follower that is open; its events one by one.
    async fn follower(&self, user: &str, session: &str, last_event_id: Option<&str>) -> Follower {
        let response = self.follow(user, session, last_event_id).await;
        assert_event_stream(&response);
        Follower {
            events: response
                .bytes_stream()
                .eventsource()
                .map(|e| {
                    let e = e.unwrap();
                    (e.id, serde_json::from_str(&e.data).unwrap())
                })
                .boxed(),
        }
    }
}

struct Follower {
    events: BoxStream<'static, Event>,
}

impl Follower {
    async fn next(&mut self) -> Event {
        tokio::time::timeout(EVENT_TIMEOUT, self.events.next())
            .await
            .unwrap()
            .unwrap()
    }

    /// Events up to and including the next `done`.
    async fn turn(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            let event = self.next().await;
            let done = event.1["type"] == "done";
            events.push(event);
            if done {
                return events;
            }
        }
    }
}

async fn collect(response: reqwest::Response) -> Vec<Event> {
    response
        .bytes_stream()
        .eventsource()
        .map(|e| {
            let e = e.unwrap();
            (e.id, serde_json::from_str(&e.data).unwrap())
        })
        .collect()
        .await
}

fn text_of(events: &[Event]) -> String {
    events
        .iter()
        .filter(|(_, e)| e["type"] == "text_token")
        .map(|(_, e)| e["text"].as_str().unwrap())
        .collect()
}

fn ids(events: &[Event]) -> Vec<&str> {
    events.iter().map(|(id, _)| id.as_str()).collect()
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"]["code"].as_str().unwrap().to_owned()
}

async fn chat_with(tweak: impl FnOnce(&mut chat_service::Settings)) -> (TestApp, Stack) {
    let mut stack = Stack::new();
    // 30 ms a chunk: a turn of twenty words lasts long enough to leave it
    // in the middle.
    let agents = start_agents(30, &mut stack).await;
    let chat = TestApp::start(&agents, &mut stack, tweak).await;
    (chat, stack)
}

async fn new_session(chat: &TestApp, user: &str) -> String {
    let created = chat.session(Method::POST, "/", user).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    created["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_session_path_answers_with_and_without_a_trailing_slash() {
    let (chat, _stack) = chat_with(|_| {}).await;
    let ada = "usr-ada";
    let session = new_session(&chat, ada).await;
    let turn = chat.session_turn(ada, &session, QUESTION).await;
    assert_eq!(text_of(&turn), "The answer is 42.");

    for slash in ["", "/"] {
        let list: Value = chat
            .session(Method::GET, slash, ada)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list["items"][0]["id"], session.as_str(), "{list}");
        let agent_list: Value = chat
            .session(Method::GET, &format!("{slash}?agent_id=text"), ada)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(agent_list["items"], json!([]), "the agent filter applies");
        for path in [
            format!("/{session}{slash}"),
            format!("/{session}/history{slash}"),
            format!("/{session}/messages{slash}"),
        ] {
            let response = chat.session(Method::GET, &path, ada).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
        }
        let renamed = chat
            .session(Method::PATCH, &format!("/{session}{slash}"), ada)
            .json(&json!({"title": format!("renamed{slash}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(renamed.status(), 200);
    }
    let history: Value = chat
        .session(Method::GET, &format!("/{session}/history/"), ada)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["conversation"]["title"], "renamed/");
    assert_eq!(history["messages"][1]["content"], "The answer is 42.");
    let page: Value = chat
        .session(Method::GET, &format!("/{session}/messages/?limit=1"), ada)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["role"], "assistant", "{page}");

    // The same conversation as the native path shows.
    let native: Value = chat.get(ada, &session).await.json().await.unwrap();
    assert_eq!(native["title"], "renamed/");

    let deleted = chat
        .session(Method::DELETE, &format!("/{session}/"), ada)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = chat
        .session(Method::GET, &format!("/{session}"), ada)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn a_session_is_created_with_or_without_a_body_and_a_bad_body_is_refused() {
    let (chat, _stack) = chat_with(|_| {}).await;
    let ada = "usr-ada";
    for body in [
        "",
        "  \n",
        "{}",
        r#"{"agent_id": "text", "title": "<img src=x onerror=alert(1)>"}"#,
    ] {
        let created = chat
            .session(Method::POST, "", ada)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201, "{body:?}");
    }
    let listed: Value = chat.list(ada, "").await.json().await.unwrap();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    // Hostile text is kept as text.
    assert_eq!(items[0]["title"], "<img src=x onerror=alert(1)>");
    assert_eq!(items[0]["agent_id"], "text");
    assert_eq!(items[1]["agent_id"], "math", "the default agent");

    for (body, status, code) in [
        ("not json", 400, "malformed_json"),
        ("[]", 422, "invalid_body"),
        (r#"{"agent_id": "nobody"}"#, 404, "unknown_agent"),
        (r#"{"title": 7}"#, 422, "invalid_body"),
    ] {
        let refused = chat
            .session(Method::POST, "/", ada)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), status, "{body}");
        assert_eq!(error_code(refused).await, code, "{body}");
    }
    let huge = format!(r#"{{"title": "{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let refused = chat
        .session(Method::POST, "/", ada)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 413);
    // Without credentials nothing is made.
    let anonymous = chat
        .http
        .post(format!("{}/chat/sessions/", chat.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let listed: Value = chat.list(ada, "").await.json().await.unwrap();
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        4,
        "nothing more was made"
    );
}

#[tokio::test]
async fn the_posted_stream_says_text_token_and_numbers_its_events_in_the_conversation() {
    let (chat, _stack) = chat_with(|_| {}).await;
    let ada = "usr-ada";
    let session = new_session(&chat, ada).await;

    let first = chat.session_turn(ada, &session, QUESTION).await;
    let types: Vec<&str> = first
        .iter()
        .map(|(_, e)| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"message_start"), "{types:?}");
    assert_eq!(types.last(), Some(&"done"), "{types:?}");
    assert!(types.contains(&"text_token"), "{types:?}");
    assert!(
        !types.contains(&"text"),
        "no native text events here: {types:?}"
    );
    assert_eq!(text_of(&first), "The answer is 42.");
    // Turn 1's reply is message 2: its events are 2.1, 2.2, …, 2.end.
    let expected: Vec<String> = (1..first.len())
        .map(|n| format!("2.{n}"))
        .chain(["2.end".to_owned()])
        .collect();
    assert_eq!(ids(&first), expected);

    let second = chat.session_turn(ada, &session, "hello again").await;
    assert_eq!(second[0].0, "4.1");
    assert_eq!(second.last().unwrap().0, "4.end");
    assert_eq!(text_of(&second), "hello again");

    // The native path still says `text`.
    let native = chat.turn(ada, &session, "native").await;
    assert!(native.iter().any(|e| e["type"] == "text"), "{native:?}");
    assert!(
        native.iter().all(|e| e["type"] != "text_token"),
        "{native:?}"
    );
}

#[tokio::test]
async fn the_posted_stream_refuses_bad_input_and_other_users() {
    let (chat, _stack) = chat_with(|_| {}).await;
    let ada = "usr-ada";
    let session = new_session(&chat, ada).await;
    let post = |user: &'static str, session: String, body: String| {
        chat.session(Method::POST, &format!("/{session}/messages/stream/"), user)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (body, status, code) in [
        (String::new(), 400, "malformed_json"),
        ("{\"message\":".to_owned(), 400, "malformed_json"),
        (json!({"message": ""}).to_string(), 422, "empty_message"),
        (json!({"message": 42}).to_string(), 422, "invalid_body"),
        (json!({"text": "hi"}).to_string(), 422, "invalid_body"),
        (
            json!({"message": "x".repeat(10_001)}).to_string(),
            413,
            "message_too_long",
        ),
    ] {
        let refused = post(ada, session.clone(), body.clone()).await.unwrap();
        assert_eq!(refused.status(), status, "{body:.40}");
        assert_eq!(error_code(refused).await, code, "{body:.40}");
    }
    let message = json!({"message": QUESTION}).to_string();
    let bobs = post("usr-bob", session.clone(), message.clone())
        .await
        .unwrap();
    assert_eq!(bobs.status(), 404);
    let unknown = post(ada, "conv-nope".into(), message).await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert!(
        chat.messages(ada, &session).await.is_empty(),
        "nothing written"
    );
}

#[tokio::test]
async fn an_eventsource_follows_turns_posted_elsewhere_one_after_the_other() {
    let (chat, _stack) = chat_with(|_| {}).await;
    let ada = "usr-ada";
    let session = new_session(&chat, ada).await;
    let mut follower = chat.follower(ada, &session, None).await;

    // The page posts the message somewhere else: the native path.
    let posted = chat.turn(ada, &session, QUESTION).await;
    let followed = follower.turn().await;
    assert_eq!(text_of(&followed), "The answer is 42.");
    assert_eq!(followed[0].1["type"], "message_start");
    assert_eq!(followed[0].1["message_id"], posted[0]["message_id"]);
    assert_eq!(followed[0].0, "2.1");
    assert_eq!(followed.last().unwrap().0, "2.end");
    assert_eq!(followed.len(), posted.len(), "every event, once");

    // The next turn, on the seed's own POST, reaches it too.
    let second = chat.session_turn(ada, &session, "and now this").await;
    let followed = follower.turn().await;
    assert_eq!(followed, second, "the same events with the same ids");
}

#[tokio::test]
async fn a_follower_that_opens_mid_turn_gets_the_turn_from_its_start() {
    let (chat, _stack) = chat_with(|_| {}).await;
    let ada = "usr-ada";
    let session = new_session(&chat, ada).await;
    let words = ["word"; 20].join(" ");
    let started = chat
        .session(Method::POST, &format!("/{session}/messages/stream"), ada)
        .json(&json!({"message": words}))
        .send()
        .await
        .unwrap();
    let mut posted = started.bytes_stream().eventsource();
    // Wait for the first text: the turn is in flight.
    loop {
        let event = posted.next().await.unwrap().unwrap();
        if event.data.contains("text_token") {
            break;
        }
    }
    let mut follower = chat.follower(ada, &session, None).await;
    let followed = follower.turn().await;
    assert_eq!(followed[0].0, "2.1");
    assert_eq!(text_of(&followed), words);
}

#[tokio::test]
async fn a_follower_that_reconnects_with_last_event_id_misses_nothing_and_repeats_nothing() {
    let (chat, _stack) = chat_with(|_| {}).await;
    let ada = "usr-ada";
    let session = new_session(&chat, ada).await;
    let words = ["word"; 20].join(" ");

    // The EventSource reads three text tokens of turn 1, then its
    // connection breaks.
    let mut follower = chat.follower(ada, &session, None).await;
    let posted = chat
        .session(Method::POST, &format!("/{session}/messages/stream"), ada)
        .json(&json!({"message": words}))
        .send()
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen
        .iter()
        .filter(|(_, e): &&Event| e["type"] == "text_token")
        .count()
        < 3
    {
        seen.push(follower.next().await);
    }
    drop(follower);
    let last_seen = seen.last().unwrap().0.clone();
    assert!(last_seen.starts_with("2."), "{last_seen}");

    // Meanwhile turn 1 ends and turn 2 runs, start to end.
    let turn_1 = collect(posted).await;
    let turn_2 = chat.session_turn(ada, &session, "a second turn").await;

    // It reconnects with the last id it read: the rest of turn 1, then
    // turn 2, each event once.
    let mut follower = chat.follower(ada, &session, Some(&last_seen)).await;
    let rest_of_1 = follower.turn().await;
    let again_2 = follower.turn().await;
    let whole_1: Vec<Event> = seen.into_iter().chain(rest_of_1).collect();
    assert_eq!(whole_1, turn_1, "turn 1: every event, once, in order");
    assert_eq!(text_of(&whole_1), words);
    assert_eq!(again_2, turn_2);

    // With turn 2's `done` as its last id, it waits for turn 3.
    let mut follower = chat.follower(ada, &session, Some("4.end")).await;
    let turn_3 = chat.session_turn(ada, &session, "a third turn").await;
    assert_eq!(follower.turn().await, turn_3);
    assert_eq!(turn_3[0].0, "6.1");
}

#[tokio::test]
async fn a_turn_whose_log_is_gone_is_rebuilt_from_storage_and_resumes_by_its_own_ids() {
    // No ended turn is kept: a late reconnect gets the stored reply.
    let (chat, _stack) = chat_with(|s| s.chat.ended_turn_linger_secs = 0).await;
    let ada = "usr-ada";
    let session = new_session(&chat, ada).await;
    chat.session_turn(ada, &session, QUESTION).await;
    let second = chat.session_turn(ada, &session, "one two three").await;

    // From turn 1's end: turn 2, rebuilt (message_start, its text whole, done).
    let mut follower = chat.follower(ada, &session, Some("2.end")).await;
    let rebuilt = follower.turn().await;
    assert_eq!(ids(&rebuilt), ["4.s1", "4.s2", "4.end"]);
    assert_eq!(rebuilt[0].1["message_id"], second[0].1["message_id"]);
    assert_eq!(
        rebuilt[0].1["user_message_id"],
        second[0].1["user_message_id"]
    );
    assert_eq!(
        rebuilt[1].1,
        json!({"type": "text_token", "text": "one two three"})
    );
    assert_eq!(rebuilt[2].1, second.last().unwrap().1, "the same done");

    // A rebuilt turn resumes exactly by its own ids.
    let mut follower = chat.follower(ada, &session, Some("4.s1")).await;
    assert_eq!(follower.turn().await, rebuilt[1..]);
    // A live id whose log is gone: the turn again, whole (the documented
    // case that repeats).
    let mut follower = chat.follower(ada, &session, Some("4.2")).await;
    assert_eq!(follower.turn().await, rebuilt);
}

#[tokio::test]
async fn following_refuses_bad_ids_other_users_and_too_many_followers() {
    let (chat, _stack) = chat_with(|s| {
        s.limits.followers_per_user = 1;
        // A client that left is noticed at the next keep-alive.
        s.chat.sse_keep_alive_ms = 50;
    })
    .await;
    let ada = "usr-ada";
    let session = new_session(&chat, ada).await;
    chat.session_turn(ada, &session, QUESTION).await;

    for bad in [
        "",
        "abc",
        "7",
        "2.",
        "2.x",
        "-1.1",
        "+2.1",
        "2.END",
        "2.s",
        "1234567890123456789.1",
        &"9".repeat(100),
    ] {
        let refused = chat.follow(ada, &session, Some(bad)).await;
        assert_eq!(refused.status(), 422, "{bad:.20}");
        assert_eq!(error_code(refused).await, "bad_last_event_id", "{bad:.20}");
    }
    let by_query = chat
        .session(
            Method::GET,
            &format!("/{session}/messages/stream?last_event_id=nope"),
            ada,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(by_query.status(), 422);
    // A malformed query is refused even beside a good header, which wins.
    let both = chat
        .session(
            Method::GET,
            &format!("/{session}/messages/stream?last_event_id=nope"),
            ada,
        )
        .header("last-event-id", "2.end")
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), 422);
    assert_eq!(chat.follow("usr-bob", &session, None).await.status(), 404);
    assert_eq!(chat.follow(ada, "conv-nope", None).await.status(), 404);
    let anonymous = chat
        .http
        .get(format!(
            "{}/chat/sessions/{session}/messages/stream",
            chat.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // One follower at a time for this user; bob has his own.
    let open = chat.follower(ada, &session, None).await;
    let over = chat.follow(ada, &session, None).await;
    assert_eq!(over.status(), 429);
    assert!(over.headers().contains_key("retry-after"));
    assert_eq!(error_code(over).await, "rate_limited");
    let bobs_session = new_session(&chat, "usr-bob").await;
    assert_eq!(
        chat.follow("usr-bob", &bobs_session, None).await.status(),
        200
    );
    // Its place comes back once it is closed (noticed at the next keep-alive).
    drop(open);
    let mut status = 429;
    for _ in 0..200 {
        status = chat.follow(ada, &session, None).await.status().as_u16();
        if status != 429 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_well_formed_id_that_names_no_reply_is_followed_as_a_position() {
    let (chat, _stack) = chat_with(|_| {}).await;
    let ada = "usr-ada";
    let session = new_session(&chat, ada).await;
    // Question 1, reply 2.
    let turn_1 = chat.session_turn(ada, &session, QUESTION).await;
    let text_1 = text_of(&turn_1);

    // Before the reply (a question's seq, or 0): the turn after it, whole.
    for before in ["1.1", "0.end", "1.s3"] {
        let mut follower = chat.follower(ada, &session, Some(before)).await;
        let again = follower.turn().await;
        assert_eq!(text_of(&again), text_1, "{before}");
        assert_eq!(again.last().unwrap().0, "2.end", "{before}");
    }
    // Past the newest reply: nothing it missed, then the next turn.
    let mut follower = chat.follower(ada, &session, Some("9.7")).await;
    let turn_2 = chat.session_turn(ada, &session, "a second turn").await;
    assert_eq!(follower.turn().await, turn_2);
}

#[tokio::test]
async fn a_quiet_follower_gets_keep_alives_and_ends_when_its_session_is_deleted() {
    let (chat, _stack) = chat_with(|s| s.chat.sse_keep_alive_ms = 50).await;
    let ada = "usr-ada";
    let session = new_session(&chat, ada).await;
    let response = chat.follow(ada, &session, None).await;
    let mut body = response.bytes_stream();
    let mut raw = String::new();
    while raw.matches(": keep-alive").count() < 2 {
        let chunk = tokio::time::timeout(EVENT_TIMEOUT, body.next())
            .await
            .unwrap();
        raw.push_str(std::str::from_utf8(&chunk.unwrap().unwrap()).unwrap());
    }
    assert!(raw.starts_with(": following"), "{raw}");
    let deleted = chat.delete(ada, &session).await;
    assert_eq!(deleted.status(), 204);
    // The stream ends.
    while let Some(chunk) = tokio::time::timeout(EVENT_TIMEOUT, body.next())
        .await
        .unwrap()
    {
        chunk.unwrap();
    }
}
