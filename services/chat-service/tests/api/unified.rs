//! `POST /chat/unified` against the real demo agents: the conversation made
//! by the first message, the agent chosen by its skills, both response
//! formats, streaming and not.

use serde_json::{Value, json};

use crate::common::{delta_text, events, openai_chunks, start_chat, streamed_text};

#[tokio::test]
async fn the_first_message_creates_a_conversation_titled_by_it() {
    let (_stack, chat) = start_chat(0, |_| {}).await;

    let response = chat
        .unified("usr-ada", json!({"message": "  What is 6 * 7?\n"}), None)
        .await;
    assert_eq!(response.status(), 200);
    let completion: Value = response.json().await.unwrap();
    assert_eq!(completion["object"], "chat.completion", "openai by default");
    assert_eq!(completion["model"], "math");
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        "The answer is 42."
    );
    let message_id = completion["message_id"].as_str().unwrap();
    assert_eq!(completion["id"], format!("chatcmpl-{message_id}"));

    let conversation = completion["conversation_id"].as_str().unwrap();
    let read = chat.read("usr-ada", conversation).await;
    assert_eq!(read["title"], "What is 6 * 7?");
    assert_eq!(read["agent_id"], "math");
    assert_eq!(read["message_count"], 2);
}

#[tokio::test]
async fn a_long_first_message_makes_a_title_of_its_start() {
    let (_stack, chat) = start_chat(0, |_| {}).await;

    let message = format!("Count the words in:\n{}", "word ".repeat(100));
    let answer: Value = chat
        .unified("usr-ada", json!({"message": message}), Some("v0.3"))
        .await
        .json()
        .await
        .unwrap();
    let read = chat
        .read("usr-ada", answer["conversation_id"].as_str().unwrap())
        .await;
    let title = read["title"].as_str().unwrap();
    // Cut at 200 characters, then trimmed (the cut may end on a space).
    assert!((195..=200).contains(&title.chars().count()), "{title}");
    assert!(!title.ends_with(' '));
    assert!(
        title.starts_with("Count the words in: word word"),
        "{title}"
    );
}

#[tokio::test]
async fn the_agent_is_chosen_by_its_skills_else_the_default() {
    let (_stack, chat) = start_chat(0, |s| s.chat.default_agent = "tree".into()).await;

    for (message, agent) in [
        ("Count the words in: a b c", "text"),
        ("What is 6 * 7?", "math"),
        ("Good morning", "tree"),
    ] {
        let response = chat
            .unified("usr-ada", json!({"message": message}), Some("v0.3"))
            .await;
        assert_eq!(response.status(), 200, "{message}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["agent_id"], agent, "{message}");
        let read = chat
            .read("usr-ada", answer["conversation_id"].as_str().unwrap())
            .await;
        assert_eq!(read["agent_id"], agent);
    }
}

#[tokio::test]
async fn agent_id_chooses_the_agent_and_an_unknown_one_is_refused() {
    let (_stack, chat) = start_chat(0, |_| {}).await;

    let answer: Value = chat
        .unified(
            "usr-ada",
            json!({"message": "What is 6 * 7?", "agent_id": "text"}),
            Some("v0.3"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["agent_id"], "text");

    let refused = chat
        .unified(
            "usr-ada",
            json!({"message": "What is 6 * 7?", "agent_id": "nobody"}),
            None,
        )
        .await;
    assert_eq!(refused.status(), 404);
    assert_eq!(chat.conversation_count("usr-ada").await, 1);
}

#[tokio::test]
async fn v03_answers_the_message_and_streams_native_events() {
    let (_stack, chat) = start_chat(0, |_| {}).await;

    let response = chat
        .unified(
            "usr-ada",
            json!({"message": "What is 6 * 7?"}),
            Some("v0.3"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["agent_id"], "math");
    let conversation = answer["conversation_id"].as_str().unwrap().to_owned();
    let message = &answer["message"];
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["status"], "complete");
    assert_eq!(message["content"], "The answer is 42.");
    assert_eq!(message["conversation_id"], conversation.as_str());
    assert_eq!(message["seq"], 2);

    // The same conversation, streamed: its agent answers, whatever agent_id says.
    let response = chat
        .unified(
            "usr-ada",
            json!({"message": "What is 6 * 7?", "conversation_id": conversation,
                   "agent_id": "text", "stream": true}),
            Some("v0.3"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let events = events(response).await;
    assert_eq!(events[0]["type"], "message_start");
    assert_eq!(events[0]["agent_id"], "math");
    assert_eq!(events[0]["conversation_id"], conversation.as_str());
    assert_eq!(streamed_text(&events), "The answer is 42.");
    let done = events.last().unwrap();
    assert_eq!(done["type"], "done");
    assert_eq!(done["status"], "complete");
    assert_eq!(chat.messages("usr-ada", &conversation).await.len(), 4);
}

#[tokio::test]
async fn openai_streaming_ends_with_done_and_continues_the_conversation() {
    let (_stack, chat) = start_chat(5, |_| {}).await;
    let conversation = chat.conversation("usr-ada", "math").await;

    let response = chat
        .unified(
            "usr-ada",
            json!({"message": "What is 6 * 7?", "conversation_id": conversation, "stream": true}),
            Some("openai"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let chunks = openai_chunks(response).await;
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(delta_text(&chunks), "The answer is 42.");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["conversation_id"], conversation.as_str());
    let messages = chat.messages("usr-ada", &conversation).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["id"], last["message_id"]);
}

#[tokio::test]
async fn other_users_conversation_is_not_found() {
    let (_stack, chat) = start_chat(0, |_| {}).await;
    let conversation = chat.conversation("usr-ada", "math").await;

    let response = chat
        .unified(
            "usr-bob",
            json!({"message": "What is 6 * 7?", "conversation_id": conversation}),
            None,
        )
        .await;
    assert_eq!(response.status(), 404);
    assert!(chat.messages("usr-ada", &conversation).await.is_empty());
}

#[tokio::test]
async fn bad_requests_are_refused_and_create_nothing() {
    let (_stack, chat) = start_chat(0, |s| s.chat.max_message_chars = 50).await;

    let status = |response: reqwest::Response| response.status().as_u16();
    assert_eq!(
        status(
            chat.unified("usr-ada", json!({"message": " \n "}), None)
                .await
        ),
        422
    );
    assert_eq!(
        status(
            chat.unified("usr-ada", json!({"message": "x".repeat(51)}), None)
                .await
        ),
        413
    );
    assert_eq!(
        status(
            chat.unified("usr-ada", json!({"message": "What is 6 * 7?"}), Some("xml"))
                .await
        ),
        400
    );
    assert_eq!(status(chat.unified("usr-ada", json!({}), None).await), 422);
    let malformed = chat
        .post_raw("/chat/unified", "usr-ada", "{\"message\": ")
        .await;
    assert_eq!(malformed.status(), 400);

    assert_eq!(chat.conversation_count("usr-ada").await, 0);
}
