//! The OpenAI chat-completions API of chat-service (`/chat/completions`,
//! `/chat/models`) against the real demo agents: `model` is the agent.

use confab_kit::testing::{Stack, assert_event_stream};
use serde_json::{Value, json};

use crate::common::{TestApp, delta_text, openai_chunks, start_chat};

fn ask(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": text}
    ]})
}

/// The math agent asked what 6 * 7 is; its answer is "The answer is 42.".
fn six_times_seven() -> Value {
    ask("math", "What is 6 * 7?")
}

/// `POST /chat/completions` of `usr-ada` with `body`; the answer's body.
async fn completion(chat: &TestApp, body: Value, conversation: Option<&str>) -> Value {
    chat.completions("usr-ada", body, conversation)
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn models_are_the_registered_agents() {
    let (_stack, chat) = start_chat(0, |_| {}).await;

    let response = chat.models("usr-ada").await;
    assert_eq!(response.status(), 200);
    let list: Value = response.json().await.unwrap();
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["object"], "model");
            assert_eq!(m["owned_by"], "confab");
            assert!(m["created"].is_i64());
            m["id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(ids, ["math", "text", "tree"]);
}

#[tokio::test]
async fn a_completion_answers_with_the_reply_in_a_new_conversation() {
    let (_stack, chat) = start_chat(0, |_| {}).await;

    let response = chat.completions("usr-ada", six_times_seven(), None).await;
    assert_eq!(response.status(), 200);
    let completion: Value = response.json().await.unwrap();
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["model"], "math");
    assert_eq!(completion["status"], "complete");
    let message_id = completion["message_id"].as_str().unwrap();
    assert_eq!(completion["id"], format!("chatcmpl-{message_id}"));
    assert!(completion["created"].as_i64().unwrap() > 1_700_000_000);
    let choice = &completion["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "The answer is 42.");
    assert_eq!(choice["finish_reason"], "stop");
    let usage = &completion["usage"];
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );

    // The conversation was created with the agent and holds the turn.
    let conversation = completion["conversation_id"].as_str().unwrap();
    let read = chat.read("usr-ada", conversation).await;
    assert_eq!(read["agent_id"], "math");
    assert_eq!(read["title"], "What is 6 * 7?");
    let messages = chat.messages("usr-ada", conversation).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["content"], "What is 6 * 7?");
    assert_eq!(messages[1]["id"], message_id);
    assert_eq!(messages[1]["content"], "The answer is 42.");
}

#[tokio::test]
async fn a_streamed_completion_sends_role_then_deltas_then_stop_and_done() {
    let (_stack, chat) = start_chat(5, |_| {}).await;

    let mut body = six_times_seven();
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let response = chat.completions("usr-ada", body, None).await;
    assert_event_stream(&response);
    let chunks = openai_chunks(response).await;
    assert!(chunks.len() >= 3, "{chunks:?}");
    let first = &chunks[0];
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    let message_id = first["message_id"].as_str().unwrap();
    let conversation = first["conversation_id"].as_str().unwrap();
    for chunk in &chunks {
        assert_eq!(chunk["id"], format!("chatcmpl-{message_id}"));
        assert_eq!(chunk["model"], "math");
        assert_eq!(chunk["conversation_id"], conversation);
    }
    assert_eq!(delta_text(&chunks), "The answer is 42.");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["status"], "complete");
    assert!(last["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null() && c.get("usage").is_none()),
        "only the last chunk finishes"
    );

    let messages = chat.messages("usr-ada", conversation).await;
    assert_eq!(messages[1]["id"], message_id);
    assert_eq!(messages[1]["content"], "The answer is 42.");
}

#[tokio::test]
async fn a_conversation_is_continued_by_header_or_metadata() {
    let (_stack, chat) = start_chat(0, |_| {}).await;

    let first = completion(&chat, six_times_seven(), None).await;
    let conversation = first["conversation_id"].as_str().unwrap();

    let response = chat
        .completions("usr-ada", six_times_seven(), Some(conversation))
        .await;
    assert_eq!(response.status(), 200);
    let second: Value = response.json().await.unwrap();
    assert_eq!(second["conversation_id"], conversation);

    let mut body = six_times_seven();
    body["metadata"] = json!({"conversation_id": conversation});
    let third = completion(&chat, body, None).await;
    assert_eq!(third["conversation_id"], conversation);
    assert_eq!(
        third["choices"][0]["message"]["content"],
        "The answer is 42."
    );

    assert_eq!(chat.messages("usr-ada", conversation).await.len(), 6);
    assert_eq!(
        chat.conversation_count("usr-ada").await,
        1,
        "no new conversation"
    );
}

#[tokio::test]
async fn other_users_conversation_is_not_found() {
    let (_stack, chat) = start_chat(0, |_| {}).await;
    let conversation = chat.conversation("usr-ada", "math").await;

    let response = chat
        .completions("usr-bob", six_times_seven(), Some(&conversation))
        .await;
    assert_eq!(response.status(), 404);
    let mut body = six_times_seven();
    body["metadata"] = json!({"conversation_id": conversation});
    assert_eq!(chat.completions("usr-bob", body, None).await.status(), 404);
    assert!(chat.messages("usr-ada", &conversation).await.is_empty());
}

#[tokio::test]
async fn bad_requests_are_refused_and_start_nothing() {
    let (_stack, chat) = start_chat(0, |s| s.chat.max_message_chars = 50).await;

    let unknown = chat
        .completions("usr-ada", ask("gpt-4o", "What is 6 * 7?"), None)
        .await;
    assert_eq!(unknown.status(), 404);
    let error: Value = unknown.json().await.unwrap();
    assert_eq!(error["error"]["code"], "model_not_found");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gpt-4o")
    );

    assert_eq!(
        chat.completions("usr-ada", ask("math", "   "), None)
            .await
            .status(),
        422,
        "empty message"
    );
    let no_user = json!({"model": "math", "messages": [{"role": "system", "content": "hi"}]});
    assert_eq!(
        chat.completions("usr-ada", no_user, None).await.status(),
        422
    );
    // Every user message has text, not only the last (as the document says).
    for messages in [
        json!([{"role": "user"}]),
        json!([{"role": "user", "content": null}]),
        json!([{"role": "user", "content": [{"type": "image_url"}]}]),
        json!([{"role": "user", "content": " "}, {"role": "user", "content": "hi"}]),
    ] {
        let refused = chat
            .completions(
                "usr-ada",
                json!({"model": "math", "messages": messages}),
                None,
            )
            .await;
        assert_eq!(refused.status(), 422, "{messages}");
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["code"], "empty_message", "{messages}");
    }
    assert_eq!(
        chat.completions("usr-ada", ask("math", &"x".repeat(51)), None)
            .await
            .status(),
        413,
        "too long"
    );
    let conversation = chat.conversation("usr-ada", "text").await;
    assert_eq!(
        chat.completions("usr-ada", six_times_seven(), Some(&conversation))
            .await
            .status(),
        422,
        "another agent's conversation"
    );
    let malformed = chat
        .post_raw("/chat/completions", "usr-ada", "{\"model\": \"math\", ")
        .await;
    assert_eq!(malformed.status(), 400);

    assert_eq!(
        chat.conversation_count("usr-ada").await,
        1,
        "only the one made here"
    );
    assert!(chat.messages("usr-ada", &conversation).await.is_empty());
}

#[tokio::test]
async fn a_failed_turn_still_ends_the_stream_cleanly_and_says_so() {
    let mut stack = Stack::new();
    // An agent nobody listens for: every attempt is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let agents = [("math".to_owned(), format!("http://127.0.0.1:{port}/"))].into();
    let chat = TestApp::start(&agents, &mut stack, |s| {
        s.a2a.max_attempts = 2;
    })
    .await;

    let mut body = six_times_seven();
    body["stream"] = json!(true);
    let response = chat.completions("usr-ada", body, None).await;
    assert_eq!(response.status(), 200);
    let chunks = openai_chunks(response).await;
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["status"], "failed");

    let answer = completion(&chat, six_times_seven(), None).await;
    assert_eq!(answer["status"], "failed");
    assert_eq!(answer["choices"][0]["message"]["content"], "");
    let messages = chat
        .messages("usr-ada", answer["conversation_id"].as_str().unwrap())
        .await;
    assert_eq!(messages[1]["status"], "failed");
}
