//! chat-service killed mid-turn (DESIGN §15): the turn is taken over, by
//! the next start or, on NATS, by another instance once its lease lapses,
//! and finished with the same reply; only a turn whose agent task is gone
//! too is `interrupted`. The service runs as its real binary here, so that
//! it can really be killed.

use std::time::Duration;

use confab_kit::testing::{Stack, TestDatabase};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::process::Process;
use crate::common::{
    SERVICE_TOKEN, numbered, sse_events, start_agents, streamed_text, until_first_text,
};

/// chat-service's process on `database_url`, its math agent at `math_url`,
/// with more `CONFAB__…` settings.
async fn start(database_url: &str, math_url: &str, settings: &[(&str, String)]) -> Process {
    let mut env = vec![
        ("DATABASE_URL", database_url.to_owned()),
        ("CONFAB__AGENTS__MATH__URL", math_url.to_owned()),
    ];
    env.extend_from_slice(settings);
    Process::start(&env).await
}

/// Ada's requests to the chat-service at `base`.
struct Ada {
    http: reqwest::Client,
    base: String,
}

impl Ada {
    fn at(base: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.to_owned(),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("x-service-token", SERVICE_TOKEN)
            .header("x-user-id", "usr-ada")
    }

    async fn conversation(&self) -> String {
        let created: Value = self
            .request(reqwest::Method::POST, "/chat/conversations")
            .json(&json!({"agent_id": "math"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        created["id"].as_str().unwrap().to_owned()
    }

    /// Starts a turn and reads it up to its first text; that event's id.
    async fn start_turn(&self, conversation: &str, message: &str) -> u64 {
        let response = self
            .request(
                reqwest::Method::POST,
                &format!("/chat/conversations/{conversation}/messages/stream"),
            )
            .json(&json!({ "message": message }))
            .send()
            .await
            .unwrap();
        let mut stream = sse_events(response);
        until_first_text(&mut stream).await.last().unwrap().0
    }

    /// The conversation's listed messages.
    async fn messages(&self, conversation: &str) -> Vec<Value> {
        let page: Value = self
            .request(
                reqwest::Method::GET,
                &format!("/chat/conversations/{conversation}/messages"),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["items"].as_array().unwrap().clone()
    }

    /// The messages once the reply is finished (a reply in flight is not
    /// listed); fails after a generous wait.
    async fn finished(&self, conversation: &str) -> Vec<Value> {
        for _ in 0..600 {
            let messages = self.messages(conversation).await;
            if messages.len() == 2 {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the reply was never finished");
    }

    /// `GET …/stream` after event `after`: every event with its id, within
    /// a generous minute.
    async fn resume(&self, conversation: &str, after: u64) -> Vec<(u64, Value)> {
        tokio::time::timeout(
            Duration::from_secs(60),
            self.resume_all(conversation, after),
        )
        .await
        .expect("the turn ends within a minute")
    }

    async fn resume_all(&self, conversation: &str, after: u64) -> Vec<(u64, Value)> {
        let response = self
            .request(
                reqwest::Method::GET,
                &format!("/chat/conversations/{conversation}/stream"),
            )
            .header("last-event-id", after.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        numbered(response).await
    }

    /// A new turn in the conversation works and completes.
    async fn goes_on(&self, conversation: &str) {
        let response = self
            .request(
                reqwest::Method::POST,
                &format!("/chat/conversations/{conversation}/messages/stream"),
            )
            .json(&json!({"message": "What is 6 * 7?"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "the conversation takes a new turn");
        let events: Vec<Value> = response
            .bytes_stream()
            .eventsource()
            .map(|e| serde_json::from_str(&e.unwrap().data).unwrap())
            .collect()
            .await;
        assert_eq!(streamed_text(&events), "The answer is 42.");
        assert_eq!(events.last().unwrap()["status"], "complete");
    }
}

#[tokio::test]
async fn a_turn_cut_off_by_a_crash_is_finished_by_the_next_start_while_its_agent_task_lives() {
    let mut stack = Stack::new();
    let agents = start_agents(40, &mut stack).await;
    let database = TestDatabase::new("chat").await.unwrap();

    let chat = start(&database.settings.url, &agents["math"], &[]).await;
    let ada = Ada::at(&chat.url);
    let conversation = ada.conversation().await;
    let words = vec!["word"; 100].join(" ");
    ada.start_turn(&conversation, &words).await;
    chat.kill(); // mid-turn, SIGKILL: nothing gets to clean up

    // The bus was in the process: the next start knows nothing of the
    // turn's events, but the agent's task goes on, and it picks it up.
    let chat = start(&database.settings.url, &agents["math"], &[]).await;
    let ada = Ada::at(&chat.url);
    let messages = ada.finished(&conversation).await;
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["status"], "complete");
    assert_eq!(messages[1]["content"], words.as_str(), "the whole reply");
    ada.goes_on(&conversation).await;
}

#[tokio::test]
async fn a_turn_cut_off_by_a_crash_whose_agent_task_is_gone_too_is_interrupted() {
    let mut stack = Stack::new();
    let agents = start_agents(40, &mut stack).await;
    let database = TestDatabase::new("chat").await.unwrap();

    let chat = start(&database.settings.url, &agents["math"], &[]).await;
    let ada = Ada::at(&chat.url);
    let conversation = ada.conversation().await;
    ada.start_turn(&conversation, &vec!["word"; 100].join(" "))
        .await;
    chat.kill();

    // Other agents, which never heard of the task.
    let others = start_agents(0, &mut stack).await;
    let chat = start(&database.settings.url, &others["math"], &[]).await;
    let ada = Ada::at(&chat.url);
    let messages = ada.finished(&conversation).await;
    assert_eq!(messages[1]["status"], "interrupted");
    ada.goes_on(&conversation).await;
}

#[tokio::test]
async fn a_killed_instances_turn_is_continued_by_another_and_resumed_there_exactly() {
    let mut stack = Stack::new();
    // The stack's namespace on the test NATS server, removed with it.
    let settings = stack.bus();
    let Some(nats) = settings.url else {
        eprintln!(
            "two instances need NATS ({}); skipped",
            confab_kit::bus::TEST_NATS_ENV
        );
        return;
    };
    let agents = start_agents(40, &mut stack).await;
    let database = TestDatabase::new("chat").await.unwrap();
    let bus = [
        ("CONFAB__BUS__URL", nats),
        ("CONFAB__BUS__NAMESPACE", settings.namespace),
        // Short, so the test does not wait long for the lease to lapse.
        ("CONFAB__CHAT__TURN_LEASE_SECS", "2".to_owned()),
    ];
    let a = start(&database.settings.url, &agents["math"], &bus).await;
    let b = start(&database.settings.url, &agents["math"], &bus).await;
    let (on_a, on_b) = (Ada::at(&a.url), Ada::at(&b.url));

    let conversation = on_a.conversation().await;
    let words = vec!["word"; 150].join(" ");
    let first_text = on_a.start_turn(&conversation, &words).await;
    a.kill();

    // Read on B from right after what A's client saw: B goes on with the
    // turn once A's lease lapses, and the reader gets the rest, each once.
    let rest = on_b.resume(&conversation, first_text).await;
    let ids: Vec<u64> = rest.iter().map(|(id, _)| *id).collect();
    let expected: Vec<u64> = (first_text + 1..first_text + 1 + ids.len() as u64).collect();
    assert_eq!(
        ids, expected,
        "every event after {first_text}, once, in order"
    );
    let (_, done) = rest.last().unwrap();
    assert_eq!(done["type"], "done");
    assert_eq!(done["status"], "complete");

    let messages = on_b.finished(&conversation).await;
    assert_eq!(messages.len(), 2, "exactly one assistant message");
    assert_eq!(messages[1]["status"], "complete");
    assert_eq!(messages[1]["content"], words.as_str(), "the whole reply");
    let rest: Vec<Value> = rest.into_iter().map(|(_, e)| e).collect();
    assert!(
        words.ends_with(&streamed_text(&rest)),
        "the rest of the reply"
    );
    on_b.goes_on(&conversation).await;
}
