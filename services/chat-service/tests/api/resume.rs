//! Turns are owned by the server: a client that goes away loses nothing,
//! and re-attaches with `Last-Event-ID`.

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::Value;

use crate::common::{TestApp, events, numbered, start_chat, streamed_text};

/// `GET …/stream` with `Last-Event-ID: after`; every event as (id, JSON).
async fn resume(
    chat: &TestApp,
    user: &str,
    conversation: &str,
    after: Option<u64>,
) -> reqwest::Response {
    let mut request = chat.request(
        reqwest::Method::GET,
        &format!("/chat/conversations/{conversation}/stream"),
        user,
    );
    if let Some(after) = after {
        request = request.header("last-event-id", after.to_string());
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_client_that_drops_after_the_first_text_loses_nothing_and_resumes_exactly() {
    let (_stack, chat) = start_chat(30, |_| {}).await;
    let conversation = chat.conversation("usr-ada", "math").await;
    let words = vec!["word"; 20].join(" ");

    let response = chat.stream("usr-ada", &conversation, &words).await;
    let mut stream = Box::pin(response.bytes_stream().eventsource());
    let mut seen = Vec::new();
    while let Some(event) = stream.next().await {
        let event = event.unwrap();
        let json: Value = serde_json::from_str(&event.data).unwrap();
        seen.push(event.id.parse::<u64>().unwrap());
        if json["type"] == "text" {
            break;
        }
    }
    drop(stream); // the client goes away after its first text event
    assert_eq!(seen[0], 1);

    let resumed = numbered(resume(&chat, "usr-ada", &conversation, Some(1)).await).await;
    let ids: Vec<u64> = resumed.iter().map(|(id, _)| *id).collect();
    let expected: Vec<u64> = (2..2 + ids.len() as u64).collect();
    assert_eq!(ids, expected, "events 2…done, each once, in order");
    let (_, done) = resumed.last().unwrap();
    assert_eq!(done["type"], "done");
    assert_eq!(done["status"], "complete");
    let json: Vec<Value> = resumed.into_iter().map(|(_, e)| e).collect();
    assert_eq!(streamed_text(&json), words, "the whole reply");

    let messages = chat.messages("usr-ada", &conversation).await;
    assert_eq!(messages.len(), 2, "exactly one assistant message");
    assert_eq!(messages[1]["status"], "complete");
    assert_eq!(messages[1]["content"], words.as_str());

    // Once the turn has ended: the finished message.
    let after = numbered(resume(&chat, "usr-ada", &conversation, Some(5)).await).await;
    let types: Vec<&str> = after
        .iter()
        .map(|(_, e)| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["message_start", "text", "done"]);
    assert_eq!(after[1].1["text"], words.as_str());
    assert_eq!(after[0].1["message_id"], messages[1]["id"]);
    assert_eq!(after[0].1["user_message_id"], messages[0]["id"]);
    assert_eq!(after[2].1["status"], "complete");
}

#[tokio::test]
async fn every_reader_of_a_turn_gets_the_same_events() {
    let (_stack, chat) = start_chat(20, |_| {}).await;
    let conversation = chat.conversation("usr-ada", "math").await;
    let words = ["word"; 10].join(" ");

    let first = chat.stream("usr-ada", &conversation, &words).await;
    let second = resume(&chat, "usr-ada", &conversation, None).await;
    let third = resume(&chat, "usr-ada", &conversation, Some(0)).await;
    let (first, second, third) =
        futures_util::join!(numbered(first), numbered(second), numbered(third));
    assert_eq!(first.last().unwrap().1["type"], "done");
    assert_eq!(first, second, "a tab that joins gets the whole turn");
    assert_eq!(first, third);
}

#[tokio::test]
async fn re_attaching_is_for_the_owner_only_and_needs_a_reply() {
    let (_stack, chat) = start_chat(20, |_| {}).await;
    let conversation = chat.conversation("usr-ada", "math").await;

    let nothing_yet = resume(&chat, "usr-ada", &conversation, None).await;
    assert_eq!(nothing_yet.status(), 404);
    let body: Value = nothing_yet.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_turn");

    let running = chat
        .stream("usr-ada", &conversation, "What is 6 * 7?")
        .await;
    let other = resume(&chat, "usr-mallory", &conversation, None).await;
    assert_eq!(
        other.status(),
        404,
        "another user's turn does not exist for them"
    );
    let malformed = chat
        .request(
            reqwest::Method::GET,
            &format!("/chat/conversations/{conversation}/stream"),
            "usr-ada",
        )
        .header("last-event-id", "seven")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 422);
    let done = events(running).await;
    assert_eq!(done.last().unwrap()["status"], "complete");
}

#[tokio::test]
async fn a_plain_post_answers_with_the_finished_reply() {
    let (_stack, chat) = start_chat(0, |_| {}).await;
    let conversation = chat.conversation("usr-ada", "math").await;
    let response = chat
        .post_message("usr-ada", &conversation, "What is 6 * 7?")
        .await;
    assert_eq!(response.status(), 201);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["role"], "assistant");
    assert_eq!(reply["content"], "The answer is 42.");
    assert_eq!(reply["status"], "complete");
    assert_eq!(reply["seq"], 2);
    assert!(reply["token_usage"]["output_tokens"].as_u64().unwrap() > 0);
    let messages = chat.messages("usr-ada", &conversation).await;
    assert_eq!(messages[1], reply, "the answer is the stored message");

    let empty = chat.post_message("usr-ada", &conversation, "   ").await;
    assert_eq!(empty.status(), 422);
    assert_eq!(chat.messages("usr-ada", &conversation).await.len(), 2);
}
