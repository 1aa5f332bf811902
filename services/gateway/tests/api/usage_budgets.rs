//! Usage and budgets through the gateway (issue 21): what a user's calls
//! cost, summed by day, agent, model, conversation and API key, equal to
//! the `llm_calls` rows they come from; and a budget that refuses the next
//! turn or LLM call before anything reaches an agent or a provider.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::ws::connect;
use crate::common::{Stack, User, error_code, fetch_json, llm_calls_of, send};

/// A key of `user` with `scopes`, presented as the user.
async fn key_of(stack: &Stack, user: &User, scopes: &[&str]) -> (String, User) {
    let created = fetch_json(
        stack
            .post("/api/v1/api-keys")
            .bearer_auth(&user.token)
            .json(&json!({"name": "script", "scopes": scopes})),
    )
    .await;
    let key = User {
        id: user.id.clone(),
        token: created["key"].as_str().unwrap().to_owned(),
        refresh_token: String::new(),
    };
    (created["id"].as_str().unwrap().to_owned(), key)
}

/// One call of the builtin model through `/api/v1/llm` as `token`.
async fn llm_call(stack: &Stack, token: &str) -> reqwest::Response {
    send(
        stack
            .post("/api/v1/llm/chat/completions")
            .bearer_auth(token)
            .json(&json!({
                "model": "builtin",
                "messages": [{"role": "user", "content": "hello budget"}],
            })),
    )
    .await
}

/// Waits until `user` has at least `n` recorded calls; all of them.
async fn calls(
    stack: &Stack,
    user: &User,
    n: usize,
) -> Vec<llm_proxy_service::store::llm_calls::LlmCall> {
    let calls = llm_calls_of(&stack.llm_db, &user.id, n).await;
    assert!(calls.len() >= n, "{} calls, expected {n}", calls.len());
    calls
}

/// `(calls, input, output)` summed per key, as `key` names a row's group.
fn sums_by(
    rows: &[llm_proxy_service::store::llm_calls::LlmCall],
    key: impl Fn(&llm_proxy_service::store::llm_calls::LlmCall) -> Option<String>,
) -> BTreeMap<Option<String>, (i64, i64, i64)> {
    let mut sums = BTreeMap::new();
    for row in rows {
        let entry = sums.entry(key(row)).or_insert((0, 0, 0));
        entry.0 += 1;
        entry.1 += row.input_tokens;
        entry.2 += row.output_tokens;
    }
    sums
}

/// `GET /api/v1/usage?{query}` as the bearer of `token`.
async fn report(stack: &Stack, query: String, token: String) -> Value {
    fetch_json(
        stack
            .get(&format!("/api/v1/usage?{query}"))
            .bearer_auth(&token),
    )
    .await
}

fn report_sums(report: &Value) -> BTreeMap<Option<String>, (i64, i64, i64)> {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["key"].as_str().map(str::to_owned),
                (
                    item["calls"].as_i64().unwrap(),
                    item["input_tokens"].as_i64().unwrap(),
                    item["output_tokens"].as_i64().unwrap(),
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn usage_by_every_grouping_sums_to_the_llm_calls_rows() {
    let stack = Stack::start_with_admin().await;
    let ada = stack.user("ada").await;
    let bob = stack.user("bob").await;
    let (chat_key_id, chat_key) = key_of(&stack, &ada, &["chat", "read"]).await;
    let (llm_key_id, llm_key) = key_of(&stack, &ada, &["llm"]).await;
    let first = stack.conversation(&ada).await;
    stack.turn(&ada, &first, "what is 2+3?").await;
    let second = stack.conversation(&chat_key).await;
    let events = stack.turn(&chat_key, &second, "what is 6*7?").await;
    assert_eq!(events.last().unwrap().1["type"], "done", "{events:?}");
    assert_eq!(llm_call(&stack, &llm_key.token).await.status(), 200);
    let bobs = stack.conversation(&bob).await;
    stack.turn(&bob, &bobs, "what is 1+1?").await;

    // Two calls for each math turn (the tool call, then the answer) and the
    // direct one: waiting for fewer reads the table while the recorder is
    // still writing.
    let rows = calls(&stack, &ada, 5).await;
    assert_eq!(rows.len(), 5, "{rows:?}");
    let bob_rows = calls(&stack, &bob, 2).await;
    assert_eq!(bob_rows.len(), 2, "{bob_rows:?}");
    // The agents' calls of the key's turn carry the key, as the direct call does.
    let keyed: Vec<_> = rows.iter().filter(|c| c.api_key_id.is_some()).collect();
    assert!(
        keyed
            .iter()
            .any(|c| c.api_key_id.as_deref() == Some(chat_key_id.as_str()))
    );
    assert!(
        keyed
            .iter()
            .any(|c| c.api_key_id.as_deref() == Some(llm_key_id.as_str()))
    );

    type KeyOf = fn(&llm_proxy_service::store::llm_calls::LlmCall) -> Option<String>;
    let groupings: [(&str, KeyOf); 5] = [
        ("day", |c| Some(c.created_at.date().to_string())),
        ("agent", |c| c.agent_id.clone()),
        // The model that answered, as the price table names it.
        ("model", |c| {
            let model = c.upstream_model.as_ref().unwrap_or(&c.model);
            Some(format!("{}/{model}", c.provider))
        }),
        ("conversation", |c| c.conversation_id.clone()),
        ("api_key", |c| c.api_key_id.clone()),
    ];
    for (group_by, key) in groupings {
        let answer = report(&stack, format!("group_by={group_by}"), ada.token.clone()).await;
        assert_eq!(
            report_sums(&answer),
            sums_by(&rows, key),
            "{group_by}: {answer}"
        );
        let total = &answer["total"];
        assert_eq!(
            total["calls"].as_i64().unwrap(),
            rows.len() as i64,
            "{group_by}"
        );
        assert_eq!(
            total["input_tokens"].as_i64().unwrap(),
            rows.iter().map(|c| c.input_tokens).sum::<i64>()
        );
        assert_eq!(
            total["output_tokens"].as_i64().unwrap(),
            rows.iter().map(|c| c.output_tokens).sum::<i64>()
        );
        // The builtin model costs nothing, and is priced.
        assert_eq!(total["cost"], 0.0, "{answer}");
        assert_eq!(total["unpriced_calls"], 0);
    }
    // Days split by agent, as the console's chart asks: each (day, agent)
    // the sum of its rows.
    let split = report(
        &stack,
        "group_by=day&split_by=agent".into(),
        ada.token.clone(),
    )
    .await;
    assert_eq!(split["split_by"], "agent");
    let mut by_day_agent = BTreeMap::new();
    for row in &rows {
        let entry = by_day_agent
            .entry((row.created_at.date().to_string(), row.agent_id.clone()))
            .or_insert((0, 0, 0));
        entry.0 += 1;
        entry.1 += row.input_tokens;
        entry.2 += row.output_tokens;
    }
    let answered: BTreeMap<(String, Option<String>), (i64, i64, i64)> = split["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                (
                    item["key"].as_str().unwrap().to_owned(),
                    item["split"].as_str().map(str::to_owned),
                ),
                (
                    item["calls"].as_i64().unwrap(),
                    item["input_tokens"].as_i64().unwrap(),
                    item["output_tokens"].as_i64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(answered, by_day_agent, "{split}");
    // Her read key reads her usage; bob's calls are never in it.
    let by_key = report(&stack, "group_by=day".into(), chat_key.token.clone()).await;
    assert_eq!(
        by_key["total"]["calls"].as_i64().unwrap(),
        rows.len() as i64
    );

    // Every user's only for an admin, and that read is audited.
    let refused = send(
        stack
            .get("/api/v1/usage?all_users=true&group_by=user")
            .bearer_auth(&ada.token),
    )
    .await;
    assert_eq!(refused.status(), 403);
    let admin = stack.admin_token().await;
    let everyone = report(&stack, "all_users=true&group_by=user".into(), admin.clone()).await;
    let users = report_sums(&everyone);
    assert_eq!(users[&Some(ada.id.clone())].0, rows.len() as i64);
    assert_eq!(users[&Some(bob.id.clone())].0, bob_rows.len() as i64);
    let audited = fetch_json(
        stack
            .get("/api/v1/admin/audit?action=admin.all_users_read")
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(audited["items"][0]["detail"]["path"], "/api/v1/usage");

    // The admin's view of ada: her month by model, the same sums.
    let detail = fetch_json(
        stack
            .get(&format!("/api/v1/admin/users/{}", ada.id))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(
        detail["usage_this_month"]["total"]["calls"]
            .as_i64()
            .unwrap(),
        rows.len() as i64,
        "{detail}"
    );
    assert_eq!(detail["api_keys"].as_array().unwrap().len(), 2);

    for query in [
        "group_by=week",
        "from=yesterday",
        "group_by=day&split_by=hour",
    ] {
        let refused = send(
            stack
                .get(&format!("/api/v1/usage?{query}"))
                .bearer_auth(&ada.token),
        )
        .await;
        assert_eq!(refused.status(), 400, "{query}");
    }
    // Each parameter valid on its own is answered whatever the others say
    // (the document can describe each, not their combinations): a range
    // that ends before it starts sums nothing, and a grouping by user of
    // her own calls is one group.
    for (query, groups) in [
        ("from=2026-12-05&to=2026-12-01", Some(0)),
        ("group_by=user", Some(1)),
        ("group_by=day&split_by=day", None),
        ("group_by=day&split_by=user", None),
    ] {
        let answered = fetch_json(
            stack
                .get(&format!("/api/v1/usage?{query}"))
                .bearer_auth(&ada.token),
        )
        .await;
        if let Some(groups) = groups {
            assert_eq!(
                answered["items"].as_array().unwrap().len(),
                groups,
                "{query}: {answered}"
            );
        }
    }
}

/// `PUT` a budget as the admin at `path`.
async fn put_budget(stack: &Stack, admin: &str, path: &str, body: Value) -> reqwest::Response {
    send(
        stack
            .request(Method::PUT, path)
            .bearer_auth(admin)
            .json(&body),
    )
    .await
}

/// The refusal of a budget: 429, its code, the limit and when it resets.
async fn assert_budget_refusal(response: reqwest::Response, subject: &str, tokens: i64) {
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert_eq!(error["code"], "budget_exceeded", "{body}");
    assert_eq!(error["limit"]["subject"], subject, "{body}");
    assert_eq!(error["limit"]["period"], "day", "{body}");
    assert_eq!(error["limit"]["tokens"], tokens, "{body}");
    let resets =
        chrono::DateTime::parse_from_rfc3339(error["resets_at"].as_str().unwrap()).unwrap();
    assert!(resets > chrono::Utc::now());
}

#[tokio::test]
async fn a_spent_budget_refuses_the_next_turn_and_call_before_any_agent_or_provider_hears_of_it() {
    let stack = Stack::start_with_admin().await;
    let ada = stack.user("ada").await;
    let bob = stack.user("bob").await;
    let admin = stack.admin_token().await;
    let set = put_budget(
        &stack,
        &admin,
        &format!("/api/v1/admin/users/{}/budget", ada.id),
        json!({"period": "day", "tokens": 1, "cost": null}),
    )
    .await;
    assert_eq!(set.status(), 200);
    let conversation = stack.conversation(&ada).await;
    // Under the limit (nothing used yet): the turn runs, and spends it.
    let events = stack.turn(&ada, &conversation, "what is 2+3?").await;
    assert_eq!(events.last().unwrap().1["type"], "done");
    // The tool call and the answer.
    let spent = calls(&stack, &ada, 2).await.len();
    assert_eq!(spent, 2);
    let messages = stack.message_items(&ada, &conversation).await.len();

    // Refused: a streamed turn, the unified endpoint, the OpenAI form, a
    // WebSocket turn and a direct LLM call.
    assert_budget_refusal(
        stack.post_stream(&ada, &conversation, "and 3+4?").await,
        "user",
        1,
    )
    .await;
    let unified = send(
        stack
            .post("/api/v1/chat")
            .bearer_auth(&ada.token)
            .json(&json!({"message": "hi", "stream": false})),
    )
    .await;
    assert_budget_refusal(unified, "user", 1).await;
    let completions = send(
        stack
            .post("/api/v1/chat/completions")
            .bearer_auth(&ada.token)
            .json(&json!({"model": "math", "messages": [{"role": "user", "content": "1+1"}]})),
    )
    .await;
    assert_eq!(completions.status(), 429);
    let (_, llm_key) = key_of(&stack, &ada, &["llm"]).await;
    assert_budget_refusal(llm_call(&stack, &llm_key.token).await, "user", 1).await;
    let mut ws = connect(
        &format!("{}/ws/chat?conversation_id={conversation}", stack.gateway),
        Some(&ada.token),
    )
    .await;
    ws.until(|f| f["type"] == "chat_history").await;
    ws.send(json!({"type": "user_prompt", "data": {"prompt": "What is 6 * 7?"}}))
        .await;
    let frames = ws.until(|f| f["type"] == "error").await;
    assert_eq!(
        frames.last().unwrap()["error"]["code"],
        "budget_exceeded",
        "{frames:?}"
    );

    // Nothing reached an agent or a provider, nothing was stored.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(calls(&stack, &ada, spent).await.len(), spent);
    assert_eq!(
        stack.message_items(&ada, &conversation).await.len(),
        messages
    );

    // Bob has no such budget.
    let his = stack.conversation(&bob).await;
    let events = stack.turn(&bob, &his, "what is 2+3?").await;
    assert_eq!(events.last().unwrap().1["type"], "done");

    // Lifted (no token limit for the day): ada goes on.
    let lifted = put_budget(
        &stack,
        &admin,
        &format!("/api/v1/admin/users/{}/budget", ada.id),
        json!({"period": "day", "tokens": null, "cost": null}),
    )
    .await;
    assert_eq!(lifted.status(), 200);
    let events = stack.turn(&ada, &conversation, "and 3+4?").await;
    assert_eq!(events.last().unwrap().1["type"], "done");
}

#[tokio::test]
async fn an_api_keys_budget_stops_that_key_and_not_its_user() {
    let stack = Stack::start_with_admin().await;
    let ada = stack.user("ada").await;
    let admin = stack.admin_token().await;
    let (key_id, key) = key_of(&stack, &ada, &["chat", "llm"]).await;
    let set = put_budget(
        &stack,
        &admin,
        &format!("/api/v1/admin/api-keys/{key_id}/budget"),
        json!({"period": "day", "tokens": 1}),
    )
    .await;
    assert_eq!(set.status(), 200);
    assert_eq!(llm_call(&stack, &key.token).await.status(), 200);
    calls(&stack, &ada, 1).await;
    assert_budget_refusal(llm_call(&stack, &key.token).await, "api_key", 1).await;
    let conversation = stack.conversation(&key).await;
    assert_budget_refusal(
        stack.post_stream(&key, &conversation, "2+3?").await,
        "api_key",
        1,
    )
    .await;
    // Ada herself, by her token, is not limited by her key's budget.
    let events = stack.turn(&ada, &conversation, "what is 2+3?").await;
    assert_eq!(events.last().unwrap().1["type"], "done");

    // Bad budgets are refused and change nothing; unknown targets are 404.
    for body in [
        json!({"period": "week", "tokens": 1}),
        json!({"period": "day", "tokens": -1}),
        json!({"period": "day", "cost": "a lot"}),
        json!({"period": "day", "tokens": 1, "extra": true}),
        json!(["day"]),
    ] {
        let refused = put_budget(
            &stack,
            &admin,
            &format!("/api/v1/admin/api-keys/{key_id}/budget"),
            body.clone(),
        )
        .await;
        assert_eq!(refused.status(), 422, "{body}");
    }
    let missing = put_budget(
        &stack,
        &admin,
        "/api/v1/admin/api-keys/key-nope/budget",
        json!({"period": "day", "tokens": 5}),
    )
    .await;
    assert_eq!(missing.status(), 404);
    assert_eq!(error_code(missing).await, "not_found");
    let missing = put_budget(
        &stack,
        &admin,
        "/api/v1/admin/users/usr-nope/budget",
        json!({"period": "day", "tokens": 5}),
    )
    .await;
    assert_eq!(missing.status(), 404);
    assert_budget_refusal(llm_call(&stack, &key.token).await, "api_key", 1).await;
}
