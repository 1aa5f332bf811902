//! One chat turn end to end: gateway → chat-service → math agent →
//! llm-proxy-service, and the ways a client can get it wrong.

use confab_kit::testing::assert_event_stream;
use serde_json::{Value, json};

use crate::common::{Stack, User, error_code, fetch_json, llm_calls_of, send, sse_events};

/// A fresh stack with ada registered and logged in, and a conversation of hers.
async fn ada_in_a_conversation() -> (Stack, User, String) {
    let stack = Stack::start().await;
    let ada = stack.user("ada").await;
    let conversation = stack.conversation(&ada).await;
    (stack, ada, conversation)
}

#[tokio::test]
async fn a_turn_streams_through_every_service_and_is_persisted() {
    let (stack, ada, conversation) = ada_in_a_conversation().await;

    let response = stack
        .post_stream(&ada, &conversation, "hello from ada")
        .await;
    assert_event_stream(&response);
    let events = sse_events(response).await;

    let types: Vec<&str> = events
        .iter()
        .map(|(_, e)| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"message_start"), "{types:?}");
    assert_eq!(types.last(), Some(&"done"), "{types:?}");
    assert!(
        types[1..types.len() - 1].iter().all(|t| *t == "text"),
        "{types:?}"
    );
    assert!(types.len() >= 3, "{types:?}");
    let ids: Vec<String> = events.iter().map(|(id, _)| id.clone()).collect();
    let expected: Vec<String> = (1..=events.len()).map(|n| n.to_string()).collect();
    assert_eq!(ids, expected, "SSE ids are the turn's sequence numbers");

    let start = &events[0].1;
    assert_eq!(start["conversation_id"], conversation.as_str());
    assert_eq!(start["agent_id"], "math");
    let streamed: String = events
        .iter()
        .filter(|(_, e)| e["type"] == "text")
        .map(|(_, e)| e["text"].as_str().unwrap())
        .collect();
    // The builtin model's echo fallback answers with the question.
    assert_eq!(streamed, "hello from ada");
    let done = &events.last().unwrap().1;
    assert_eq!(done["status"], "complete");
    assert_eq!(done["message_id"], start["message_id"]);
    assert!(done["token_usage"]["output_tokens"].as_u64().unwrap() > 0);

    let messages = stack.message_items(&ada, &conversation).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(
        (messages[0]["seq"].as_i64(), messages[0]["role"].as_str()),
        (Some(1), Some("user"))
    );
    assert_eq!(messages[0]["content"], "hello from ada");
    assert_eq!(messages[0]["id"], start["user_message_id"]);
    assert_eq!(
        (messages[1]["seq"].as_i64(), messages[1]["role"].as_str()),
        (Some(2), Some("assistant"))
    );
    assert_eq!(messages[1]["id"], start["message_id"]);
    assert_eq!(messages[1]["content"], streamed.as_str());
    assert_eq!(messages[1]["status"], "complete");
    assert_eq!(messages[1]["token_usage"], done["token_usage"]);
    assert!(messages[1]["agent_task_id"].as_str().is_some());

    let calls = llm_calls_of(&stack.llm_db, &ada.id, 1).await;
    assert_eq!(calls.len(), 1, "one llm_calls row for the one LLM call");
    let call = &calls[0];
    assert_eq!(call.agent_id.as_deref(), Some("math"));
    assert_eq!(call.conversation_id.as_deref(), Some(conversation.as_str()));
    assert_eq!(call.status, "ok");
    assert!(call.stream);
    assert_eq!(
        (call.input_tokens as u64, call.output_tokens as u64),
        (
            done["token_usage"]["input_tokens"].as_u64().unwrap(),
            done["token_usage"]["output_tokens"].as_u64().unwrap()
        )
    );
}

#[tokio::test]
async fn a_second_turn_gets_the_next_sequence_numbers() {
    let (stack, ada, conversation) = ada_in_a_conversation().await;
    for text in ["one", "two"] {
        let events = stack.turn(&ada, &conversation, text).await;
        assert_eq!(events.last().unwrap().1["status"], "complete");
    }
    let seqs: Vec<i64> = stack
        .message_items(&ada, &conversation)
        .await
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
}

#[tokio::test]
async fn a_model_breaking_off_leaves_an_incomplete_reply_with_its_words_and_is_traced() {
    let (stack, ada, conversation) = ada_in_a_conversation().await;
    let breaking_off = "simulate an error: disk full";
    let events = stack.turn(&ada, &conversation, breaking_off).await;
    let of_type = |kind: &'static str| {
        events
            .iter()
            .map(|(_, e)| e)
            .filter(move |e| e["type"] == kind)
    };
    let errors: Vec<&Value> = of_type("error").collect();
    assert_eq!(errors.len(), 1, "{events:?}");
    assert_eq!(errors[0]["error"]["code"], "agent_incomplete");
    assert_eq!(
        errors[0]["error"]["message"],
        "the model failed: the model broke off (simulated): disk full"
    );
    // The words said before the break are kept: the reply is incomplete
    // (DESIGN §7).
    let said: String = of_type("text")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(said, "Let me think about that");
    let done = &events.last().unwrap().1;
    assert_eq!(done["type"], "done");
    assert_eq!(done["status"], "incomplete", "{events:?}");
    let reply = stack
        .message_items(&ada, &conversation)
        .await
        .pop()
        .unwrap();
    assert_eq!(reply["status"], "incomplete", "{reply}");
    assert_eq!(reply["content"], said.as_str());

    let calls = llm_calls_of(&stack.llm_db, &ada.id, 1).await;
    assert_eq!(calls[0].status, "error");
    let filter = llm_proxy_service::store::trace_events::EventFilter {
        user_id: Some(ada.id.clone()),
        limit: 100,
        ..Default::default()
    };
    let mut kinds = Vec::new();
    for _ in 0..400 {
        kinds = llm_proxy_service::store::trace_events::list(&stack.llm_db, &filter)
            .await
            .unwrap()
            .into_iter()
            .map(|event| event.kind)
            .collect();
        if kinds.last().is_some_and(|kind| kind == "llm.error") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(kinds.first().map(String::as_str), Some("llm.request"));
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("llm.error"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn a_forged_auth_from_a_client_never_reaches_chat_service() {
    let stack = Stack::start().await;
    let ada = stack.user("ada").await;
    let mallory = stack.user("mallory").await;

    // Mallory claims to be Ada in the body; the gateway replaces the claim.
    let forged = json!({"title": "mine", "_auth": {"user_id": ada.id, "role": "admin"}});
    let response = stack.create_conversation(&mallory, forged).await;
    assert_eq!(response.status(), 201);
    let conversation: Value = response.json().await.unwrap();
    let id = conversation["id"].as_str().unwrap();
    assert_eq!(stack.messages(&mallory, id).await.status(), 200);
    assert_eq!(stack.messages(&ada, id).await.status(), 404);

    // Identity headers and a service token from a client are dropped too.
    let response = stack
        .get(&format!("/api/v1/conversations/{id}/messages"))
        .bearer_auth(&ada.token)
        .header("x-user-id", &mallory.id)
        .header("x-service-token", "confab-dev-service-token");
    let response = send(response).await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn a_forged_auth_in_a_body_the_gateway_cannot_rebuild_gets_400() {
    let stack = Stack::start().await;
    let mallory = stack.user("mallory").await;
    // A body naming `_auth` is rewritten whole; these cannot be: nested
    // past serde_json's recursion limit (128), or holding a number no f64
    // holds. Both used to answer 500.
    let depth = 200;
    for body in [
        format!(
            r#"{{"_auth":{{"user_id":"usr-victim","role":"admin"}},"title":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        ),
        r#"{"title":"x","_auth":{"user_id":"usr-victim"},"n":1e400}"#.to_owned(),
    ] {
        let response = stack
            .post("/api/v1/conversations")
            .bearer_auth(&mallory.token)
            .header("content-type", "application/json")
            .body(body.clone());
        let response = send(response).await;
        assert_eq!(response.status(), 400, "{}", &body[..60]);
        assert_eq!(error_code(response).await, "unsupported_json");
    }
    // Nothing was created.
    let listed = fetch_json(
        stack
            .get("/api/v1/conversations")
            .bearer_auth(&mallory.token),
    )
    .await;
    assert_eq!(listed["items"], json!([]), "{listed}");
}

#[tokio::test]
async fn identity_sent_straight_to_chat_service_needs_the_service_token() {
    let stack = Stack::start().await;
    let url = format!("{}/chat/conversations", stack.chat);
    let body = json!({"title": "x", "_auth": {"user_id": "usr-someone"}});

    let post = || stack.http.post(&url);

    let response = send(post().json(&body)).await;
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "unauthorized");

    let response = send(post().header("x-service-token", "wrong").json(&body)).await;
    assert_eq!(response.status(), 401);

    let identity_only = post().header("x-user-id", "usr-someone");
    let response = send(identity_only.json(&json!({"title": "x"}))).await;
    assert_eq!(response.status(), 401);

    // With the service token the same request is accepted.
    let with_token = post().header("x-service-token", "confab-dev-service-token");
    let response = send(with_token.json(&body)).await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn another_users_conversation_is_not_found() {
    let (stack, ada, conversation) = ada_in_a_conversation().await;
    let mallory = stack.user("mallory").await;

    let response = stack.post_stream(&mallory, &conversation, "hello").await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "not_found");
    assert_eq!(stack.messages(&mallory, &conversation).await.status(), 404);
    assert!(stack.message_items(&ada, &conversation).await.is_empty());
}

#[tokio::test]
async fn bad_turn_input_gets_a_json_error_and_writes_nothing() {
    let (stack, ada, conversation) = ada_in_a_conversation().await;

    let cases: Vec<(String, u16, &str)> = vec![
        ("{\"message\": \"unterminated".into(), 400, "malformed_json"),
        ("not json at all".into(), 400, "malformed_json"),
        (json!({"message": ""}).to_string(), 422, "empty_message"),
        (json!({"message": "   "}).to_string(), 422, "empty_message"),
        (
            json!({"text": "wrong field"}).to_string(),
            422,
            "invalid_body",
        ),
        (json!({"message": 42}).to_string(), 422, "invalid_body"),
        (
            json!({"message": "x".repeat(10_001)}).to_string(),
            413,
            "message_too_long",
        ),
    ];
    for (body, status, code) in cases {
        let response = stack
            .post_stream_raw(&ada, &conversation, body.clone())
            .await;
        assert_eq!(
            response.status().as_u16(),
            status,
            "{}",
            &body[..body.len().min(60)]
        );
        assert_eq!(error_code(response).await, code);
    }
    let exactly_at_limit = stack
        .post_stream(&ada, &conversation, &"y".repeat(10_000))
        .await;
    assert_eq!(exactly_at_limit.status(), 200);
    sse_events(exactly_at_limit).await;

    let messages = stack.message_items(&ada, &conversation).await;
    assert_eq!(messages.len(), 2, "only the valid turn left messages");
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused_at_the_gateway() {
    let stack = Stack::start().await;
    for token in [
        None,
        Some("not-a-jwt"),
        Some("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."),
    ] {
        let mut request = stack.post("/api/v1/conversations").json(&json!({}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{token:?}");
        assert_eq!(error_code(response).await, "unauthorized");
    }
}

#[tokio::test]
async fn a_user_token_is_accepted_by_the_services_directly() {
    let stack = Stack::start().await;
    let ada = stack.user("ada").await;

    // chat-service: the token instead of the gateway's identity.
    let direct = stack
        .http
        .post(format!("{}/chat/conversations", stack.chat))
        .bearer_auth(&ada.token);
    let response = send(direct.json(&json!({"title": "direct"}))).await;
    assert_eq!(response.status(), 201);
    let conversation: Value = response.json().await.unwrap();
    let id = conversation["id"].as_str().unwrap();
    assert_eq!(
        stack.messages(&ada, id).await.status(),
        200,
        "the same user through the gateway"
    );

    // llm-proxy-service: a user may call the proxy, attributed to them.
    let completion = stack
        .http
        .post(format!("{}/v1/chat/completions", stack.llm))
        .bearer_auth(&ada.token)
        .header("x-user-id", "usr-someone-else")
        .json(&json!({"model": "builtin", "messages": [{"role": "user", "content": "hi"}]}));
    let response = send(completion).await;
    assert_eq!(response.status(), 200);
    let calls = llm_calls_of(&stack.llm_db, &ada.id, 1).await;
    assert_eq!(
        calls.len(),
        1,
        "attributed to the token's user, not the header"
    );
    assert_eq!(calls[0].agent_id, None);

    // A tampered token is refused by both.
    let tampered = format!("{}x", ada.token);
    for url in [
        format!("{}/chat/conversations", stack.chat),
        format!("{}/v1/chat/completions", stack.llm),
    ] {
        let response = send(stack.http.post(url).bearer_auth(&tampered).json(&json!({}))).await;
        assert_eq!(response.status(), 401);
    }
}

/// The text of a turn's `text` events and the kinds of all its events.
fn transcript(events: &[(String, Value)]) -> (String, Vec<String>) {
    let text = events
        .iter()
        .filter(|(_, e)| e["type"] == "text")
        .map(|(_, e)| e["text"].as_str().unwrap())
        .collect();
    let kinds = events
        .iter()
        .map(|(_, e)| e["type"].as_str().unwrap().to_owned())
        .collect();
    (text, kinds)
}

#[tokio::test]
async fn the_math_agent_answers_with_its_calculator() {
    let (stack, ada, conversation) = ada_in_a_conversation().await;
    let question = "What is 6 * (3 + 4)?";
    let events = stack.turn(&ada, &conversation, question).await;
    let (text, kinds) = transcript(&events);
    assert_eq!(text, "The answer is 42.");
    assert!(
        kinds.contains(&"reasoning".to_owned()),
        "the tool use is reported: {kinds:?}"
    );
    let reasoning = events
        .iter()
        .find(|(_, e)| e["type"] == "reasoning")
        .unwrap();
    assert!(
        reasoning.1["text"]
            .as_str()
            .unwrap()
            .starts_with("calculator(")
    );
    let done = &events.last().unwrap().1;
    assert_eq!(done["status"], "complete");

    // Two LLM calls (the tool call, then the answer), usage summed on the message.
    let calls = llm_calls_of(&stack.llm_db, &ada.id, 2).await;
    assert_eq!(calls.len(), 2);
    let input: i64 = calls.iter().map(|c| c.input_tokens).sum();
    let output: i64 = calls.iter().map(|c| c.output_tokens).sum();
    assert_eq!(done["token_usage"]["input_tokens"].as_i64(), Some(input));
    assert_eq!(done["token_usage"]["output_tokens"].as_i64(), Some(output));
    let messages = stack.message_items(&ada, &conversation).await;
    assert_eq!(messages[1]["content"], "The answer is 42.");
}

#[tokio::test]
async fn the_text_agent_counts_words() {
    let stack = Stack::start().await;
    let ada = stack.user("ada").await;
    let created: Value = stack
        .create_conversation(&ada, json!({"agent_id": "text"}))
        .await
        .json()
        .await
        .unwrap();
    let conversation = created["id"].as_str().unwrap();
    let events = stack
        .turn(
            &ada,
            conversation,
            "Count the words in: the quick brown fox",
        )
        .await;
    assert_eq!(events[0].1["agent_id"], "text");
    assert_eq!(transcript(&events).0, "That text has 4 words.");
    let events = stack.turn(&ada, conversation, "uppercase: confab").await;
    assert_eq!(transcript(&events).0, "Here it is: CONFAB");
}

#[tokio::test]
async fn the_agents_are_listed_with_their_cards() {
    let stack = Stack::start().await;
    let ada = stack.user("ada").await;
    let agents = "/api/v1/agents";
    assert_eq!(send(stack.get(agents)).await.status(), 401);
    let page = fetch_json(stack.get(agents).bearer_auth(&ada.token)).await;
    let items = page["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["math", "text", "tree"]);
    for agent in items {
        assert_eq!(agent["card"]["name"], agent["id"]);
        assert_eq!(
            agent["card"]["supportedInterfaces"][0]["protocolVersion"],
            "1.0"
        );
        assert!(!agent["card"]["skills"].as_array().unwrap().is_empty());
    }
}
