//! Usage, cost and budgets (issue 21), against the real demo agents and
//! the real llm-proxy-service they think through (builtin model: its calls
//! cost 0, a known price): the API key a turn was started with reaches the
//! agent and its LLM calls; what the agent reports a reply cost lands on
//! the reply and in its conversation's totals; a turn over budget, or
//! whose budget cannot be checked, is refused before anything is written.

use chat_service::store::messages::{self, Finished};
use chat_service::store::models::NewMessage;
use confab_kit::testing::Stack;
use confab_protocol::chat::{Cost, MessageRole, MessageStatus, MessageUsage};
use serde_json::{Value, json};

use crate::common::ws::Envelope;
use crate::common::{
    SERVICE_TOKEN, TestApp, events, llm_calls_of, start_agents, start_chat_with_budgets,
};

const QUESTION: &str = "What is 6 * 7?";

/// A turn of `user` started with the API key `key`, as the gateway sends
/// one (the key's id in `X-Api-Key-Id`, beside the service token); its
/// events.
async fn turn_with_key(chat: &TestApp, user: &str, conversation: &str, key: &str) -> Vec<Value> {
    let response = chat
        .request(
            reqwest::Method::POST,
            &format!("/chat/conversations/{conversation}/messages/stream"),
            user,
        )
        .header("x-api-key-id", key)
        .json(&json!({ "message": QUESTION }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    events(response).await
}

#[tokio::test]
async fn the_api_key_a_turn_was_started_with_reaches_the_agent_and_its_llm_calls() {
    let (_stack, chat, llm) = start_chat_with_budgets(|_| {}).await;
    let conversation = chat.conversation("usr-ada", "math").await;
    let done = turn_with_key(&chat, "usr-ada", &conversation, "key-ada-1")
        .await
        .pop()
        .unwrap();
    assert_eq!(done["status"], "complete", "{done}");
    // The math agent calls its model twice (the calculator, then the answer).
    let calls = llm_calls_of(&llm, "usr-ada", 2).await;
    assert_eq!(calls.len(), 2);
    for call in &calls {
        assert_eq!(call.api_key_id.as_deref(), Some("key-ada-1"), "{call:?}");
        assert_eq!(call.conversation_id.as_deref(), Some(conversation.as_str()));
    }

    // A turn without a key: its calls carry none.
    let events = chat.turn("usr-ada", &conversation, QUESTION).await;
    assert_eq!(events.last().unwrap()["status"], "complete");
    let calls = llm_calls_of(&llm, "usr-ada", 4).await;
    assert_eq!(calls.len(), 4);
    assert_eq!(
        calls
            .iter()
            .filter(|call| call.api_key_id.is_none())
            .count(),
        2
    );
}

#[tokio::test]
async fn the_cost_an_agent_reports_lands_on_the_reply_and_the_conversation_totals() {
    let (_stack, chat, _llm) = start_chat_with_budgets(|_| {}).await;
    let conversation = chat.conversation("usr-ada", "math").await;
    let fresh = chat.read("usr-ada", &conversation).await;
    assert_eq!(
        fresh["usage"],
        json!({"input_tokens": 0, "output_tokens": 0, "cost": 0.0, "messages_without_cost": 0})
    );
    let mut dones = Vec::new();
    for _ in 0..2 {
        let events = chat.turn("usr-ada", &conversation, QUESTION).await;
        let done = events.last().unwrap().clone();
        assert_eq!(done["status"], "complete", "{done}");
        // The builtin model is priced: it costs nothing.
        assert_eq!(done["token_usage"]["cost"], json!(0.0), "{done}");
        assert!(done["token_usage"]["input_tokens"].as_u64().unwrap() > 0);
        dones.push(done);
    }
    let messages = chat.messages("usr-ada", &conversation).await;
    let replies: Vec<&Value> = messages
        .iter()
        .filter(|m| m["role"] == "assistant")
        .collect();
    assert_eq!(replies.len(), 2);
    for (reply, done) in replies.iter().zip(&dones) {
        assert_eq!(reply["token_usage"], done["token_usage"]);
    }
    let sum = |field: &str| -> u64 {
        replies
            .iter()
            .map(|r| r["token_usage"][field].as_u64().unwrap())
            .sum()
    };
    let read = chat.read("usr-ada", &conversation).await;
    assert_eq!(
        read["usage"],
        json!({
            "input_tokens": sum("input_tokens"),
            "output_tokens": sum("output_tokens"),
            "cost": 0.0,
            "messages_without_cost": 0,
        })
    );
    // The list shows the same totals.
    let list: Value = chat.list("usr-ada", "").await.json().await.unwrap();
    assert_eq!(list["items"][0]["usage"], read["usage"]);

    // The OpenAI form carries the cost beside OpenAI's counts.
    let completion: Value = chat
        .completions(
            "usr-ada",
            json!({"model": "math", "messages": [{"role": "user", "content": QUESTION}]}),
            Some(&conversation),
        )
        .await
        .json()
        .await
        .unwrap();
    let usage = &completion["usage"];
    assert_eq!(usage["cost"], json!(0.0), "{completion}");
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn the_cost_ends_a_turn_over_either_websocket_dialect() {
    let (_stack, chat, _llm) = start_chat_with_budgets(|_| {}).await;
    let mut ws = chat.socket("usr-ada", "", false).await;
    let ready = ws.init(json!({"agent_id": "math"})).await;
    let conversation = ready["session_id"].as_str().unwrap().to_owned();
    ws.send(json!({"type": "user_prompt", "data": {"prompt": QUESTION}}))
        .await;
    let last = ws.turn().await.pop().unwrap();
    let usage = &last["data"]["token_usage"];
    assert_eq!(usage["cost"], json!(0.0), "{last}");
    assert!(usage["output_tokens"].as_u64().unwrap() > 0, "{last}");
    let reply = chat.messages("usr-ada", &conversation).await.pop().unwrap();
    assert_eq!(&reply["token_usage"], usage);

    let mut compact = chat.socket("usr-ada", "", true).await;
    assert_eq!(compact.json().await["type"], "welcome");
    compact
        .send(json!({"type": "message", "text": QUESTION}))
        .await;
    let done = compact.until(|f| f["type"] == "done").await.pop().unwrap();
    assert_eq!(done["result"]["cost"], json!(0.0), "{done}");
    assert!(
        done["result"]["tokens_used"].as_u64().unwrap() > 0,
        "{done}"
    );
}

/// Writes a turn's two rows as a turn does, then finishes the reply with
/// `usage`, through chat-service's store.
async fn finished_reply(
    chat: &TestApp,
    user: &str,
    conversation: &str,
    usage: Option<MessageUsage>,
) {
    let new = |role, in_flight| NewMessage {
        id: confab_kit::ids::new_id("msg").into(),
        role,
        content: String::new(),
        content_blocks: json!([]),
        status: MessageStatus::Complete,
        token_usage: None,
        agent_task_id: None,
        in_flight,
    };
    let rows = messages::append_all(
        &chat.db,
        &user.into(),
        &conversation.into(),
        vec![
            new(MessageRole::User, false),
            new(MessageRole::Assistant, true),
        ],
    )
    .await
    .unwrap()
    .unwrap();
    let finished = || Finished {
        content: "reply".into(),
        content_blocks: json!([]),
        status: MessageStatus::Complete,
        token_usage: usage,
        agent_task_id: None,
    };
    let (user, conversation) = (user.into(), conversation.into());
    let reply = &rows[1].id;
    let saved = messages::finish(&chat.db, &user, &conversation, reply, finished());
    assert!(saved.await.unwrap());
    // Once: a reply finished again (a turn taken over) adds nothing.
    let again = messages::finish(&chat.db, &user, &conversation, reply, finished());
    assert!(!again.await.unwrap());
}

#[tokio::test]
async fn conversation_totals_are_exact_sums_and_count_the_replies_without_a_cost() {
    let mut stack = Stack::new();
    let agents = start_agents(0, &mut stack).await;
    let chat = TestApp::start(&agents, &mut stack, |_| {}).await;
    let conversation = chat.conversation("usr-ada", "math").await;
    // Costs that no float adds up exactly: 0.1 + 0.2 + 0.000000001.
    for (input, output, cost) in [
        (10, 5, Some(0.1)),
        (20, 7, Some(0.2)),
        (1, 1, Some(0.000_000_001)),
        // A third-party agent that reports tokens but no cost.
        (4, 4, None),
    ] {
        let usage = MessageUsage {
            cost: cost.map(|c| Cost::from_units(c).unwrap()),
            ..MessageUsage::tokens(input, output)
        };
        finished_reply(&chat, "usr-ada", &conversation, Some(usage)).await;
    }
    // An agent that reports nothing at all.
    finished_reply(&chat, "usr-ada", &conversation, None).await;

    let read = chat.read("usr-ada", &conversation).await;
    assert_eq!(
        read["usage"],
        json!({
            "input_tokens": 35,
            "output_tokens": 17,
            "cost": 0.300_000_001,
            "messages_without_cost": 2,
        }),
        "{read}"
    );
    let replies: Vec<Value> = chat
        .messages("usr-ada", &conversation)
        .await
        .into_iter()
        .filter(|m| m["role"] == "assistant")
        .collect();
    assert_eq!(
        replies[0]["token_usage"],
        json!({"input_tokens": 10, "output_tokens": 5, "cost": 0.1})
    );
    assert_eq!(
        replies[3]["token_usage"],
        json!({"input_tokens": 4, "output_tokens": 4}),
        "an unknown cost is absent"
    );
    assert_eq!(replies[4]["token_usage"], Value::Null);
}

/// Stores a budget of `tokens` a day for `user` in llm-proxy-service, as
/// an admin does through the gateway.
async fn budget_of(chat: &TestApp, llm_url: &str, user: &str, tokens: i64) {
    let response = chat
        .http
        .put(format!("{llm_url}/budgets/user/{user}"))
        .header("x-service-token", SERVICE_TOKEN)
        .header("x-user-id", "usr-admin")
        .header("x-user-role", "admin")
        .json(&json!({"period": "day", "tokens": tokens, "user_id": user}))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
}

/// Asserts an HTTP refusal for budget, with the limit it ran into.
async fn assert_over_budget(response: reqwest::Response) {
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
    assert_eq!(body["error"]["limit"]["subject"], "user", "{body}");
    assert_eq!(body["error"]["limit"]["period"], "day", "{body}");
    assert_eq!(body["error"]["limit"]["tokens"], 0, "{body}");
    assert!(body["error"]["resets_at"].as_str().is_some(), "{body}");
}

#[tokio::test]
async fn a_turn_over_budget_is_refused_at_every_entry_point_and_writes_nothing() {
    let (_stack, chat, llm) = start_chat_with_budgets(|_| {}).await;
    let conversation = chat.conversation("usr-ada", "math").await;
    budget_of(&chat, &llm.url, "usr-ada", 0).await;

    assert_over_budget(chat.stream("usr-ada", &conversation, QUESTION).await).await;
    assert_over_budget(chat.post_message("usr-ada", &conversation, QUESTION).await).await;
    let unified = chat
        .unified("usr-ada", json!({"message": QUESTION}), None)
        .await;
    assert_over_budget(unified).await;
    let completion = json!({"model": "math", "messages": [{"role": "user", "content": QUESTION}]});
    assert_over_budget(chat.completions("usr-ada", completion, None).await).await;

    let mut ws = chat.socket("usr-ada", "", false).await;
    ws.init(json!({"conversation_id": conversation})).await;
    ws.send(json!({"type": "user_prompt", "data": {"prompt": QUESTION}}))
        .await;
    let refused = ws.json().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["error"]["code"], "budget_exceeded");
    assert!(refused["error"]["retry_after"].as_u64().unwrap() >= 1);
    let mut compact = chat.socket("usr-ada", "", true).await;
    assert_eq!(compact.json().await["type"], "welcome");
    compact
        .send(json!({"type": "message", "text": QUESTION}))
        .await;
    let refused = compact.json().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "budget_exceeded");

    // Nothing was written, nothing reached an agent.
    assert!(chat.messages("usr-ada", &conversation).await.is_empty());
    assert_eq!(chat.conversation_count("usr-ada").await, 1);
    assert!(llm_calls_of(&llm, "usr-ada", 0).await.is_empty());

    // Another user, within their budget, is served.
    let bobs = chat.conversation("usr-bob", "math").await;
    let events = chat.turn("usr-bob", &bobs, QUESTION).await;
    assert_eq!(events.last().unwrap()["status"], "complete");
}

#[tokio::test]
async fn a_turn_whose_budget_cannot_be_checked_is_refused_and_writes_nothing() {
    let nobody = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut stack = Stack::new();
    let agents = start_agents(0, &mut stack).await;
    let chat = TestApp::start(&agents, &mut stack, |settings| {
        settings.budget.enabled = true;
        settings.budget.url = format!("http://127.0.0.1:{nobody}");
    })
    .await;
    let conversation = chat.conversation("usr-ada", "math").await;
    let refused = chat.stream("usr-ada", &conversation, QUESTION).await;
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "budget_unavailable", "{body}");
    let unified = chat
        .unified("usr-ada", json!({"message": QUESTION}), None)
        .await;
    assert_eq!(unified.status(), 503);
    assert!(chat.messages("usr-ada", &conversation).await.is_empty());
    assert_eq!(chat.conversation_count("usr-ada").await, 1);
}
