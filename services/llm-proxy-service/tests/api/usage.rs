//! `GET /usage`: the caller's calls summed by day, agent, model,
//! conversation, API key or user, checked against the recorded rows.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use llm_proxy_service::pricing::ModelPrice;
use llm_proxy_service::providers::ProviderSettings;
use llm_proxy_service::store::llm_calls::{self, CallFilter, LlmCall};
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::common::{MATH_KEY, Proxy, TEXT_KEY, Upstream, sse_data};

async fn usage(proxy: &Proxy, user: &str, role: &str, query: &str) -> reqwest::Response {
    proxy
        .service(Method::GET, &format!("/usage{query}"), user, role)
        .send()
        .await
        .unwrap()
}

async fn usage_json(proxy: &Proxy, user: &str, role: &str, query: &str) -> Value {
    let response = usage(proxy, user, role, query).await;
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.unwrap()
}

/// A call as an agent (`key`) for `user`, in `conversation`, with the API
/// key `api_key` if any.
async fn call(
    proxy: &Proxy,
    key: &str,
    user: &str,
    conversation: Option<&str>,
    api_key: Option<&str>,
    model: &str,
) {
    let mut request = proxy
        .http
        .post(format!("{}/v1/chat/completions", proxy.url))
        .bearer_auth(key)
        .header("x-user-id", user);
    if let Some(conversation) = conversation {
        request = request.header("x-conversation-id", conversation);
    }
    if let Some(api_key) = api_key {
        request = request.header("x-api-key-id", api_key);
    }
    let response = request
        .json(
            &json!({"model": model, "messages": [{"role": "user", "content": "a few words here"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Every ended call, everyone's.
async fn all_calls(proxy: &Proxy) -> Vec<LlmCall> {
    llm_calls::list(
        &proxy.db,
        &CallFilter {
            limit: 1000,
            ..CallFilter::default()
        },
    )
    .await
    .unwrap()
}

fn key_of(call: &LlmCall, group_by: &str) -> Option<String> {
    match group_by {
        "day" => Some(call.created_at.format("%Y-%m-%d").to_string()),
        "agent" => call.agent_id.clone(),
        "model" => Some(format!(
            "{}/{}",
            call.provider,
            call.upstream_model.clone().unwrap()
        )),
        "conversation" => call.conversation_id.clone(),
        "api_key" => call.api_key_id.clone(),
        "user" => call.user_id.clone(),
        other => panic!("{other}"),
    }
}

/// The report's items as the rows say they should be: key → (calls,
/// input, cached, output, cost in nano-units or null, unpriced).
fn expected(calls: &[LlmCall], group_by: &str) -> BTreeMap<Option<String>, [Option<i64>; 6]> {
    let mut groups: BTreeMap<Option<String>, [Option<i64>; 6]> = BTreeMap::new();
    for call in calls {
        let sums = groups.entry(key_of(call, group_by)).or_insert([
            Some(0),
            Some(0),
            Some(0),
            Some(0),
            None,
            Some(0),
        ]);
        let add = |slot: &mut Option<i64>, n: i64| *slot = Some(slot.unwrap_or(0) + n);
        add(&mut sums[0], 1);
        add(&mut sums[1], call.input_tokens);
        add(&mut sums[2], call.cached_input_tokens);
        add(&mut sums[3], call.output_tokens);
        match call.cost_nanos {
            Some(cost) => add(&mut sums[4], cost),
            None => add(&mut sums[5], 1),
        }
    }
    groups
}

fn as_nanos(cost: &Value) -> Option<i64> {
    cost.as_f64().map(|c| (c * 1e9).round() as i64)
}

fn reported(report: &Value) -> BTreeMap<Option<String>, [Option<i64>; 6]> {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["key"].as_str().map(str::to_owned),
                [
                    item["calls"].as_i64(),
                    item["input_tokens"].as_i64(),
                    item["cached_input_tokens"].as_i64(),
                    item["output_tokens"].as_i64(),
                    as_nanos(&item["cost"]),
                    item["unpriced_calls"].as_i64(),
                ],
            )
        })
        .collect()
}

#[tokio::test]
async fn usage_grouped_every_way_sums_to_the_recorded_rows_of_the_caller_only() {
    let upstream = Upstream::start().await;
    let cached = upstream.provider("cached");
    let unpriced = upstream.provider("ok");
    let proxy = Proxy::start(move |s| {
        s.providers.insert("up".into(), cached);
        s.providers.insert("free".into(), unpriced);
        s.pricing.models.insert(
            "up/m".into(),
            ModelPrice {
                input_per_mtok: Decimal::from_str("0.15").unwrap(),
                output_per_mtok: Decimal::from_str("0.6").unwrap(),
                cached_input_per_mtok: Some(Decimal::from_str("0.075").unwrap()),
            },
        );
    })
    .await;
    let ada = "usr-ada";
    call(&proxy, MATH_KEY, ada, Some("conv-1"), None, "builtin").await;
    call(&proxy, MATH_KEY, ada, Some("conv-1"), Some("key-a"), "up/m").await;
    call(&proxy, TEXT_KEY, ada, Some("conv-2"), Some("key-a"), "up/m").await;
    call(&proxy, TEXT_KEY, ada, None, Some("key-b"), "free/m").await;
    call(&proxy, MATH_KEY, ada, Some("conv-2"), None, "free/m").await;
    call(
        &proxy,
        MATH_KEY,
        "usr-bob",
        Some("conv-9"),
        Some("key-z"),
        "up/m",
    )
    .await;
    call(&proxy, TEXT_KEY, "usr-bob", Some("conv-9"), None, "builtin").await;
    proxy.calls_of(ada, 5).await;
    proxy.calls_of("usr-bob", 2).await;
    let everyone = all_calls(&proxy).await;
    let adas: Vec<LlmCall> = everyone
        .iter()
        .filter(|c| c.user_id.as_deref() == Some(ada))
        .cloned()
        .collect();
    assert_eq!(adas.len(), 5);

    for group_by in ["day", "agent", "model", "conversation", "api_key"] {
        let report = usage_json(&proxy, ada, "user", &format!("?group_by={group_by}")).await;
        assert_eq!(report["currency"], "USD");
        assert_eq!(report["group_by"], group_by);
        assert_eq!(reported(&report), expected(&adas, group_by), "{group_by}");
        let keys: Vec<Option<&str>> = report["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["key"].as_str())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_by_key(|k| (k.is_none(), *k));
        assert_eq!(keys, sorted, "items in key order, null last");
        let total = &report["total"];
        assert_eq!(total["calls"], 5);
        assert!(total.get("key").is_none());
        let tokens: i64 = adas.iter().map(|c| c.input_tokens).sum();
        assert_eq!(total["input_tokens"].as_i64(), Some(tokens));
        let cost: i64 = adas.iter().filter_map(|c| c.cost_nanos).sum();
        assert_eq!(as_nanos(&total["cost"]), Some(cost));
        assert_eq!(total["unpriced_calls"], 2, "the two calls of free/m");
    }
    // Both priced calls of up/m: 1,950 nano-units each.
    let by_model = usage_json(&proxy, ada, "user", "?group_by=model").await;
    let up = by_model["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"] == "up/m")
        .unwrap()
        .clone();
    assert_eq!(as_nanos(&up["cost"]), Some(3_900));
    let free = by_model["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"] == "free/m")
        .unwrap()
        .clone();
    assert!(free["cost"].is_null(), "every call of it unpriced: {free}");

    let by_user = usage_json(&proxy, "usr-root", "admin", "?group_by=user&all_users=true").await;
    assert_eq!(reported(&by_user), expected(&everyone, "user"));
    let one_user = usage_json(
        &proxy,
        "usr-root",
        "admin",
        "?group_by=agent&user_id=usr-bob",
    )
    .await;
    let bobs: Vec<LlmCall> = everyone
        .iter()
        .filter(|c| c.user_id.as_deref() == Some("usr-bob"))
        .cloned()
        .collect();
    assert_eq!(reported(&one_user), expected(&bobs, "agent"));

    let nobody = usage_json(&proxy, "usr-carol", "user", "").await;
    assert_eq!(nobody["items"], json!([]));
    assert_eq!(nobody["total"]["calls"], 0);
    assert!(nobody["total"]["cost"].is_null());
}

#[tokio::test]
async fn usage_is_read_over_the_range_asked_for() {
    let proxy = Proxy::start(|_| {}).await;
    call(&proxy, MATH_KEY, "usr-ada", None, None, "builtin").await;
    proxy.calls_of("usr-ada", 1).await;
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap();
    let inside = usage_json(
        &proxy,
        "usr-ada",
        "user",
        &format!("?from={today}&to={tomorrow}&group_by=day"),
    )
    .await;
    assert_eq!(inside["total"]["calls"], 1);
    assert_eq!(inside["items"][0]["key"], today.to_string());
    assert_eq!(inside["from"], format!("{today}T00:00:00Z"));
    let before = usage_json(
        &proxy,
        "usr-ada",
        "user",
        &format!("?from={}&to={today}", today - chrono::Days::new(100)),
    )
    .await;
    assert_eq!(before["total"]["calls"], 0);
}

/// The document can say what each parameter is, not how two go together:
/// every combination of valid parameters is answered (what schemathesis
/// holds the service to).
#[tokio::test]
async fn combinations_of_valid_parameters_are_answered() {
    let proxy = Proxy::start(|_| {}).await;
    call(&proxy, MATH_KEY, "usr-ada", None, None, "builtin").await;
    call(&proxy, MATH_KEY, "usr-bob", None, None, "builtin").await;
    proxy.calls_of("usr-ada", 1).await;
    proxy.calls_of("usr-bob", 1).await;
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap();

    for range in [
        format!("?from={tomorrow}&to={today}"),
        format!("?from={today}&to={today}"),
    ] {
        let empty = usage_json(&proxy, "usr-ada", "user", &range).await;
        assert_eq!(empty["items"], json!([]), "{range}");
        assert_eq!(empty["total"]["calls"], 0, "{range}");
    }
    let ages = usage_json(&proxy, "usr-ada", "user", "?from=0001-01-01&to=9999-12-31").await;
    assert_eq!(ages["total"]["calls"], 1, "a range of any length");

    let own = usage_json(&proxy, "usr-ada", "user", "?group_by=user").await;
    assert_eq!(own["items"].as_array().unwrap().len(), 1, "{own}");
    assert_eq!(own["items"][0]["key"], "usr-ada");

    let same = usage_json(&proxy, "usr-ada", "user", "?group_by=agent&split_by=agent").await;
    assert_eq!(same["split_by"], "agent");
    assert_eq!(same["items"][0]["split"], same["items"][0]["key"]);

    let bob = usage_json(
        &proxy,
        "usr-root",
        "admin",
        "?user_id=usr-bob&all_users=true&group_by=user",
    )
    .await;
    assert_eq!(bob["items"].as_array().unwrap().len(), 1, "{bob}");
    assert_eq!(bob["items"][0]["key"], "usr-bob");
}

#[tokio::test]
async fn a_call_in_flight_is_not_in_the_usage() {
    let proxy = Proxy::start(|s| {
        if let Some(ProviderSettings::Builtin(builtin)) = s.providers.get_mut("builtin") {
            builtin.first_chunk_delay_ms = 3_000;
        }
    })
    .await;
    let response = proxy
        .http
        .post(format!("{}/v1/chat/completions", proxy.url))
        .bearer_auth(MATH_KEY)
        .header("x-user-id", "usr-ada")
        .json(&json!({"model": "builtin", "stream": true, "messages": [{"role": "user", "content": "slow"}]}))
        .send()
        .await
        .unwrap();
    for _ in 0..200 {
        if !llm_calls::instances_in_flight(&proxy.db, "")
            .await
            .unwrap()
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !llm_calls::instances_in_flight(&proxy.db, "")
            .await
            .unwrap()
            .is_empty(),
        "the call's row is written as it starts"
    );
    let report = usage_json(&proxy, "usr-ada", "user", "").await;
    assert_eq!(report["total"]["calls"], 0, "{report}");
    sse_data(response).await;
    proxy.calls_of("usr-ada", 1).await;
    let report = usage_json(&proxy, "usr-ada", "user", "").await;
    assert_eq!(report["total"]["calls"], 1);
}

#[tokio::test]
async fn usage_refuses_unreadable_parameters_and_other_users() {
    let proxy = Proxy::start(|_| {}).await;
    for (query, code) in [
        ("?from=yesterday", "invalid_range"),
        ("?from=", "invalid_range"),
        ("?to=2026-02-30", "invalid_range"),
        ("?from=2026-12-05T10:00:00", "invalid_range"),
        ("?group_by=week", "invalid_group_by"),
        ("?group_by=", "invalid_group_by"),
        ("?split_by=Day", "invalid_group_by"),
        ("?all_users=maybe", "bad_query"),
    ] {
        let response = usage(&proxy, "usr-ada", "user", query).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
    }
    let long = format!("?group_by={}", "x".repeat(5000));
    let response = usage(&proxy, "usr-ada", "user", &long).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().len() < 300);

    for query in [
        "?all_users=true",
        "?user_id=usr-bob",
        "?group_by=user&all_users=true",
    ] {
        let response = usage(&proxy, "usr-ada", "user", query).await;
        assert_eq!(response.status(), 403, "{query}");
    }
    let both = usage(
        &proxy,
        "usr-root",
        "admin",
        "?user_id=usr-bob&all_users=true",
    )
    .await;
    assert_eq!(both.status(), 200, "user_id is one of every user");

    let anonymous = proxy
        .http
        .get(format!("{}/usage", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let agent = proxy
        .http
        .get(format!("{}/usage", proxy.url))
        .bearer_auth(MATH_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(agent.status(), 401, "an agent key is not a user");
    let wrong_token = proxy
        .http
        .get(format!("{}/usage", proxy.url))
        .header("x-service-token", "not-the-token")
        .header("x-user-id", "usr-ada")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_token.status(), 401);
}
