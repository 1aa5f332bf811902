//! chat-service's API called the way the gateway calls it (service token and
//! identity), with an agent that cannot be reached: every turn still ends with
//! exactly one persisted assistant message.

use serde_json::{Value, json};

use crate::common::start_chat_with_dead_agents;

#[tokio::test]
async fn a_turn_whose_agent_is_down_ends_failed_with_one_assistant_message() {
    let (_stack, app) = start_chat_with_dead_agents(&["math"]).await;
    let conversation = app.conversation("usr-ada", "math").await;
    let events = app.turn("usr-ada", &conversation, "hello?").await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["message_start", "retry", "retry", "error", "done"]);
    assert_eq!(
        (
            events[1]["attempt"].as_u64(),
            events[1]["max_attempts"].as_u64()
        ),
        (Some(2), Some(3))
    );
    assert_eq!(events[2]["attempt"], 3);
    assert_eq!(events[3]["error"]["code"], "agent_failed");
    assert_eq!(events[4]["status"], "failed");

    let items = app.messages("usr-ada", &conversation).await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["role"], "assistant");
    assert_eq!(items[1]["status"], "failed");
    assert_eq!(items[1]["id"], events[0]["message_id"]);
    assert_eq!(items[1]["content"], "");
}

#[tokio::test]
async fn messages_page_backwards_with_before_seq() {
    let (_stack, app) = start_chat_with_dead_agents(&["math"]).await;
    let conversation = app.conversation("usr-ada", "math").await;
    for n in 0..3 {
        app.turn("usr-ada", &conversation, &format!("message {n}"))
            .await;
    }
    let seqs = |page: &Value| -> Vec<i64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect()
    };
    let newest = app.messages_page("usr-ada", &conversation, "limit=4").await;
    assert_eq!(seqs(&newest), [3, 4, 5, 6]);
    assert_eq!(newest["next_cursor"], "3");
    let older = app
        .messages_page("usr-ada", &conversation, "limit=4&before_seq=3")
        .await;
    assert_eq!(seqs(&older), [1, 2]);
    assert_eq!(older["next_cursor"], Value::Null);

    for bad in ["limit=0", "limit=501", "limit=ten", "before_seq=x"] {
        let response = app.page("usr-ada", &conversation, bad).await;
        assert!([400, 422].contains(&response.status().as_u16()), "{bad}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["code"].is_string(), "{bad}");
    }
}

#[tokio::test]
async fn conversations_are_created_for_known_agents_only() {
    let (_stack, app) = start_chat_with_dead_agents(&["math"]).await;
    let response = app
        .create("usr-ada", json!({"title": "  Sums  ", "agent_id": "math"}))
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["title"], "Sums");
    assert_eq!(created["agent_id"], "math");
    assert_eq!(created["message_count"], 0);
    assert!(created["id"].as_str().unwrap().starts_with("conv-"));

    let untitled: Value = app.create("usr-ada", json!({})).await.json().await.unwrap();
    assert_eq!(untitled["title"], "New conversation");

    let response = app.create("usr-ada", json!({"agent_id": "nobody"})).await;
    assert_eq!(response.status(), 404);
    let response = app
        .create("usr-ada", json!({"title": "t".repeat(201)}))
        .await;
    assert_eq!(response.status(), 422);
    let response = app
        .post_raw("/chat/conversations", "usr-ada", "{oops")
        .await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn another_users_conversation_is_not_found() {
    let (_stack, app) = start_chat_with_dead_agents(&["math"]).await;
    let conversation = app.conversation("usr-ada", "math").await;
    assert_eq!(
        app.page("usr-mallory", &conversation, "").await.status(),
        404
    );
    let response = app.stream("usr-mallory", &conversation, "mine now").await;
    assert_eq!(response.status(), 404);
    assert!(app.messages("usr-ada", &conversation).await.is_empty());
}
