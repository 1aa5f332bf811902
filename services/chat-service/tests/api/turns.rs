//! Turns against the real demo agents: canceling one mid-stream, refusing a
//! second one while the first runs, and speaking the agent's A2A version.

use confab_kit::testing::Stack;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::{
    TestApp, sse_events, start_agents, start_chat, streamed_text, until_first_text, without_ids,
};

#[tokio::test]
async fn cancel_mid_stream_cancels_the_agents_task_and_keeps_the_message_canceled() {
    let mut stack = Stack::new();
    let agents = start_agents(40, &mut stack).await;
    let chat = TestApp::start(&agents, &mut stack, |_| {}).await;
    let conversation = chat.conversation("usr-ada", "math").await;
    let words = vec!["word"; 100].join(" ");

    let response = chat.stream("usr-ada", &conversation, &words).await;
    let mut stream = sse_events(response);
    let mut events = until_first_text(&mut stream).await;
    let canceled = chat.cancel("usr-ada", &conversation).await;
    assert_eq!(canceled.status(), 202);
    events.extend(stream.collect::<Vec<_>>().await);
    let events = without_ids(events);

    let done = events.last().unwrap();
    assert_eq!(done["type"], "done");
    assert_eq!(done["status"], "canceled");
    assert!(
        !events.iter().any(|e| e["type"] == "error"),
        "a cancel is not an error"
    );
    let partial = streamed_text(&events);
    assert!(
        !partial.is_empty() && partial.len() < words.len(),
        "stopped mid-way: {partial:?}"
    );

    let messages = chat.messages("usr-ada", &conversation).await;
    assert_eq!(messages.len(), 2, "exactly one assistant message");
    assert_eq!(messages[1]["status"], "canceled");
    assert_eq!(messages[1]["content"], partial.as_str());

    // The agent's task really stopped.
    let task_id = messages[1]["agent_task_id"].as_str().unwrap();
    let task: Value = chat
        .http
        .post(&agents["math"])
        .bearer_auth(crate::common::SERVICE_TOKEN)
        .header("A2A-Version", "1.0")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": task_id}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(task["result"]["status"]["state"], "TASK_STATE_CANCELED");
}

#[tokio::test]
async fn a_second_turn_while_one_runs_is_refused_and_writes_nothing() {
    let (_stack, chat) = start_chat(20, |_| {}).await;
    let conversation = chat.conversation("usr-ada", "math").await;
    let words = vec!["word"; 30].join(" ");

    let first = chat.stream("usr-ada", &conversation, &words).await;
    let second = chat
        .stream("usr-ada", &conversation, "What is 6 * 7?")
        .await;
    assert_eq!(second.status(), 409);
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["error"]["code"], "turn_in_flight");

    // Another user can neither cancel it nor learn that it exists.
    assert_eq!(chat.cancel("usr-bob", &conversation).await.status(), 404);

    let events = crate::common::events(first).await;
    assert_eq!(events.last().unwrap()["status"], "complete");
    assert_eq!(streamed_text(&events), words);
    let nothing = chat.cancel("usr-ada", &conversation).await;
    assert_eq!(nothing.status(), 409);
    let body: Value = nothing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_turn_in_flight");

    let messages = chat.messages("usr-ada", &conversation).await;
    assert_eq!(messages.len(), 2, "the refused turn left no message");

    // With the first turn over, the next one is welcome.
    let events = chat.turn("usr-ada", &conversation, "What is 6 * 7?").await;
    assert_eq!(streamed_text(&events), "The answer is 42.");
}

#[tokio::test]
async fn an_agent_configured_for_v03_is_spoken_to_in_v03() {
    let (_stack, chat) = start_chat(0, |settings| {
        let math = settings.agents.get_mut("math").unwrap();
        math.protocol_version = Some("0.3".into());
    })
    .await;
    let conversation = chat.conversation("usr-ada", "math").await;
    let events = chat.turn("usr-ada", &conversation, "What is 6 * 7?").await;
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "reasoning" && e["text"].as_str().unwrap().contains("calculator")),
        "{events:?}"
    );
    assert_eq!(streamed_text(&events), "The answer is 42.");
    let done = events.last().unwrap();
    assert_eq!(done["status"], "complete");
    assert!(done["token_usage"]["output_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_protocol_version_confab_does_not_speak_is_refused_at_start() {
    let mut settings =
        <chat_service::Settings as confab_kit::settings::ServiceSettings>::defaults().unwrap();
    let database = confab_kit::testing::TestDatabase::new("chat")
        .await
        .unwrap();
    settings.server.port = 0;
    settings.database = database.settings.clone();
    settings.agents.get_mut("math").unwrap().protocol_version = Some("0.2".into());
    let error = chat_service::build(settings).await.err().unwrap();
    assert!(
        format!("{error:#}").contains("protocol_version"),
        "{error:#}"
    );
}

#[tokio::test]
async fn the_tree_agents_patch_updates_the_conversations_tree_version_by_version() {
    let (_stack, chat) = start_chat(0, |_| {}).await;
    let conversation = chat.conversation("usr-ada", "tree").await;
    let events = chat
        .turn("usr-ada", &conversation, "add node Fruits under root")
        .await;
    assert_eq!(events.last().unwrap()["status"], "complete", "{events:?}");
    let updates: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "tree_update")
        .collect();
    assert_eq!(updates.len(), 1, "{events:?}");
    assert_eq!(updates[0]["version"], 1);
    // A new conversation's tree is `{}`, which the agent got: its patch
    // first turns `{}` into a root (without a tree it would not).
    let patch = updates[0]["patch"].as_array().unwrap();
    assert_eq!(patch[0]["op"], "add");
    assert_eq!(patch[0]["path"], "", "{patch:?}");

    let read = chat.read("usr-ada", &conversation).await;
    assert_eq!(read["tree_version"], 1);
    assert_eq!(read["tree"]["children"][0]["label"], "Fruits", "{read}");

    // The next edit starts from the stored tree.
    let events = chat
        .turn("usr-ada", &conversation, "rename node fruits to Produce")
        .await;
    let update = events.iter().find(|e| e["type"] == "tree_update").unwrap();
    assert_eq!(update["version"], 2);
    assert_eq!(update["patch"][0]["op"], "replace", "{update}");

    let messages = chat.messages("usr-ada", &conversation).await;
    let blocks = messages[1]["content_blocks"].as_array().unwrap();
    assert!(
        blocks
            .iter()
            .any(|b| b["type"] == "data" && b["data"]["tree_patch"].is_array()),
        "the patch is persisted with the message: {blocks:?}"
    );
}
