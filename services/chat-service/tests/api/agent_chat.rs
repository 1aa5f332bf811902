//! Seed 003's agent dashboard on `/chat/agent/chat…` (issue 17): a chat
//! that creates its session or continues the one named, the same as SSE,
//! and the session's history in the seed's shape.

use std::collections::BTreeMap;

use confab_kit::testing::Stack;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{TestApp, start_agents};

const QUESTION: &str = "What is 6 * 7?";

impl TestApp {
    async fn agent_chat(&self, user: &str, path: &str, body: &str) -> reqwest::Response {
        self.request(Method::POST, &format!("/chat/agent/chat{path}"), user)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    async fn agent_history(&self, user: &str, session: &str, query: &str) -> reqwest::Response {
        self.request(
            Method::GET,
            &format!("/chat/agent/chat/history/{session}{query}"),
            user,
        )
        .send()
        .await
        .unwrap()
    }
}

async fn events(response: reqwest::Response) -> Vec<Value> {
    assert_eq!(response.status(), 200);
    response
        .bytes_stream()
        .eventsource()
        .map(|e| serde_json::from_str(&e.unwrap().data).unwrap())
        .collect()
        .await
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"]["code"].as_str().unwrap().to_owned()
}

async fn chat() -> (TestApp, Stack) {
    let mut stack = Stack::new();
    let agents = start_agents(0, &mut stack).await;
    let chat = TestApp::start(&agents, &mut stack, |_| {}).await;
    (chat, stack)
}

#[tokio::test]
async fn a_first_message_creates_a_session_and_the_next_one_continues_it() {
    let (chat, _stack) = chat().await;
    let ada = "usr-ada";
    // Exactly the seed's request, its `character_id` included.
    let first = chat
        .agent_chat(
            ada,
            "",
            &json!({"message": QUESTION, "session_id": null, "character_id": 526379435})
                .to_string(),
        )
        .await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let session_id = first["session_id"].as_str().unwrap();
    assert!(session_id.starts_with("conv-"), "{first}");
    assert_eq!(first["status"], "idle");
    assert_eq!(first["message"]["content"], "The answer is 42.");
    assert_eq!(first["message"]["role"], "assistant");
    assert_eq!(first["message_id"], first["message"]["id"]);
    assert!(first.get("error").is_none(), "{first}");

    let second: Value = chat
        .agent_chat(
            ada,
            "",
            &json!({"message": "and again", "session_id": session_id, "character_id": 1})
                .to_string(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["session_id"], session_id);
    assert_eq!(second["message"]["content"], "and again");
    let messages = chat.messages(ada, session_id).await;
    assert_eq!(messages.len(), 4, "both turns in the one session");
}

#[tokio::test]
async fn the_stream_names_a_new_session_first_and_continues_a_named_one() {
    let (chat, _stack) = chat().await;
    let ada = "usr-ada";
    let first = events(
        chat.agent_chat(ada, "/stream", &json!({"message": QUESTION}).to_string())
            .await,
    )
    .await;
    let start = &first[0];
    assert_eq!(start["type"], "message_start", "{first:?}");
    let session_id = start["session_id"].as_str().unwrap().to_owned();
    let text: String = first
        .iter()
        .filter(|e| e["type"] == "text")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "The answer is 42.");
    let done = first.last().unwrap();
    assert_eq!(done["type"], "done");
    assert_eq!(done["session_id"], session_id.as_str());
    assert_eq!(done["message_id"], start["message_id"]);
    assert!(done["message_id"].as_str().unwrap().starts_with("msg-"));

    let second = events(
        chat.agent_chat(
            ada,
            "/stream",
            &json!({"message": "more", "session_id": session_id, "character_id": 526379435})
                .to_string(),
        )
        .await,
    )
    .await;
    assert_eq!(second[0]["session_id"], session_id.as_str());
    assert_eq!(second.last().unwrap()["session_id"], session_id.as_str());
    assert_eq!(chat.messages(ada, &session_id).await.len(), 4);
}

#[tokio::test]
async fn history_is_the_newest_messages_in_order_in_the_seeds_shape() {
    let (chat, _stack) = chat().await;
    let ada = "usr-ada";
    let first: Value = chat
        .agent_chat(ada, "", &json!({"message": QUESTION}).to_string())
        .await
        .json()
        .await
        .unwrap();
    let session_id = first["session_id"].as_str().unwrap();
    chat.agent_chat(
        ada,
        "",
        &json!({"message": "second", "session_id": session_id}).to_string(),
    )
    .await;

    let history: Value = chat
        .agent_history(ada, session_id, "")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["session_id"], session_id);
    assert_eq!(history["message_count"], 4);
    let messages = history["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    let reply = &messages[1];
    let mut fields: Vec<&str> = reply
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "content",
            "content_blocks",
            "created_at",
            "id",
            "role",
            "status",
            "token_usage"
        ]
    );
    assert_eq!(reply["content"], "The answer is 42.");
    assert!(
        reply["token_usage"]["output_tokens"].as_u64().unwrap() > 0,
        "{reply}"
    );
    assert_eq!(reply["content_blocks"][0]["type"], "text");

    // `limit` keeps the newest, still oldest first; the count is all of them.
    let last_two: Value = chat
        .agent_history(ada, session_id, "?limit=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(last_two["message_count"], 4);
    let contents: Vec<&str> = last_two["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["second", "second"]);

    for bad in ["0", "-1", "1001"] {
        let refused = chat
            .agent_history(ada, session_id, &format!("?limit={bad}"))
            .await;
        assert_eq!(refused.status(), 422, "{bad}");
        assert_eq!(error_code(refused).await, "invalid_limit", "{bad}");
    }
    // Not a number, empty included: the query cannot be read, as every
    // other limit of the service.
    for bad in ["", "ten", "1.5", "%20"] {
        let refused = chat
            .agent_history(ada, session_id, &format!("?limit={bad}"))
            .await;
        assert_eq!(refused.status(), 400, "{bad:?}");
        assert_eq!(error_code(refused).await, "bad_query", "{bad:?}");
    }
}

#[tokio::test]
async fn bad_input_is_refused_and_writes_nothing() {
    let (chat, _stack) = chat().await;
    let ada = "usr-ada";
    for path in ["", "/stream"] {
        for (body, status, code) in [
            (String::new(), 400, "malformed_json"),
            ("{\"message\":".to_owned(), 400, "malformed_json"),
            ("[]".to_owned(), 422, "invalid_body"),
            (json!({"session_id": null}).to_string(), 422, "invalid_body"),
            (json!({"message": ["hi"]}).to_string(), 422, "invalid_body"),
            (json!({"message": "  "}).to_string(), 422, "empty_message"),
            (
                json!({"message": "x".repeat(10_001)}).to_string(),
                413,
                "message_too_long",
            ),
            (
                json!({"message": "hi", "agent_id": "nobody"}).to_string(),
                404,
                "unknown_agent",
            ),
            (
                json!({"message": "hi", "session_id": "conv-nope"}).to_string(),
                404,
                "not_found",
            ),
        ] {
            let refused = chat.agent_chat(ada, path, &body).await;
            assert_eq!(refused.status(), status, "{path} {body:.40}");
            assert_eq!(error_code(refused).await, code, "{path} {body:.40}");
        }
        let huge = json!({"message": "x".repeat(2 * 1024 * 1024)}).to_string();
        assert_eq!(chat.agent_chat(ada, path, &huge).await.status(), 413);
    }
    let listed: Value = chat.list(ada, "").await.json().await.unwrap();
    assert_eq!(listed["items"], json!([]), "no session was made");

    // Hostile text is only text.
    let hostile = "<img src=x onerror=alert(1)> [x](javascript:alert(1))";
    let answered: Value = chat
        .agent_chat(
            ada,
            "",
            &json!({"message": hostile, "agent_id": "text"}).to_string(),
        )
        .await
        .json()
        .await
        .unwrap();
    let history: Value = chat
        .agent_history(ada, answered["session_id"].as_str().unwrap(), "")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["messages"][0]["content"], hostile);
}

#[tokio::test]
async fn another_users_session_is_not_found() {
    let (chat, _stack) = chat().await;
    let first: Value = chat
        .agent_chat("usr-ada", "", &json!({"message": QUESTION}).to_string())
        .await
        .json()
        .await
        .unwrap();
    let session_id = first["session_id"].as_str().unwrap();
    let body = json!({"message": "mine now", "session_id": session_id}).to_string();
    for path in ["", "/stream"] {
        let refused = chat.agent_chat("usr-bob", path, &body).await;
        assert_eq!(refused.status(), 404, "{path}");
        assert_eq!(error_code(refused).await, "not_found");
    }
    let refused = chat.agent_history("usr-bob", session_id, "").await;
    assert_eq!(refused.status(), 404);
    assert_eq!(
        chat.messages("usr-ada", session_id).await.len(),
        2,
        "untouched"
    );
    let unknown = chat.agent_history("usr-ada", "conv-nope", "").await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn a_turn_whose_agent_is_down_reports_retries_and_a_text_error() {
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut stack = Stack::new();
    let agents = BTreeMap::from([("math".to_owned(), format!("http://127.0.0.1:{dead_port}/"))]);
    let chat = TestApp::start(&agents, &mut stack, |_| {}).await;
    let streamed = events(
        chat.agent_chat(
            "usr-ada",
            "/stream",
            &json!({"message": QUESTION}).to_string(),
        )
        .await,
    )
    .await;
    let retries: Vec<&Value> = streamed.iter().filter(|e| e["type"] == "retry").collect();
    assert_eq!(retries.len(), 2, "{streamed:?}");
    assert_eq!(retries[0]["attempt"], 2);
    assert_eq!(retries[0]["max_attempts"], 3);
    let error = streamed.iter().find(|e| e["type"] == "error").unwrap();
    assert!(
        error["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{error}"
    );
    assert_eq!(error["code"], "agent_failed");
    let done = streamed.last().unwrap();
    assert_eq!(done["type"], "done");
    assert_eq!(done["status"], "failed");

    let answered: Value = chat
        .agent_chat("usr-ada", "", &json!({"message": QUESTION}).to_string())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answered["status"], "error", "{answered}");
    assert_eq!(answered["code"], "agent_failed");
    assert!(answered["error"].is_string(), "{answered}");
    assert_eq!(answered["message"]["status"], "failed");
}
