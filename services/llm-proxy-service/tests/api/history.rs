//! `GET /llm-calls`, `GET /llm-calls/{id}` and `GET /traces`: paginated and
//! always scoped to the caller.

use serde_json::{Value, json};

use crate::common::{MATH_KEY, Proxy, SERVICE_TOKEN};

async fn call_as(proxy: &Proxy, user: &str, message: &str) -> String {
    let calculator = json!({"type": "function", "function": {"name": "calculator", "parameters": {"type": "object"}}});
    let response = proxy
        .http
        .post(format!("{}/v1/chat/completions", proxy.url))
        .bearer_auth(MATH_KEY)
        .header("x-user-id", user)
        .json(&json!({"model": "builtin", "tools": [calculator], "messages": [{"role": "user", "content": message}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.headers()["x-confab-call-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn get(proxy: &Proxy, user: &str, role: &str, path: &str) -> reqwest::Response {
    proxy
        .http
        .get(format!("{}{path}", proxy.url))
        .header("x-service-token", SERVICE_TOKEN)
        .header("x-user-id", user)
        .header("x-user-role", role)
        .send()
        .await
        .unwrap()
}

async fn json_of(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Waits until the recorder has written `n` calls of `user`.
async fn wait_for_calls(proxy: &Proxy, user: &str, n: usize) {
    for _ in 0..400 {
        let page = json_of(get(proxy, user, "user", "/llm-calls?limit=200").await).await;
        if page["items"].as_array().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("calls of {user} not recorded");
}

#[tokio::test]
async fn calls_are_listed_newest_first_page_by_page_and_only_the_callers() {
    let proxy = Proxy::start(|_| {}).await;
    let mut ada_calls = Vec::new();
    for n in 0..5 {
        ada_calls.push(call_as(&proxy, "usr-ada", &format!("message {n}")).await);
    }
    let bob_call = call_as(&proxy, "usr-bob", "bob's message").await;
    wait_for_calls(&proxy, "usr-ada", 5).await;
    wait_for_calls(&proxy, "usr-bob", 1).await;

    let mut seen = Vec::new();
    let mut path = "/llm-calls?limit=2".to_owned();
    loop {
        let page = json_of(get(&proxy, "usr-ada", "user", &path).await).await;
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["user_id"], "usr-ada");
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/llm-calls?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    ada_calls.reverse();
    assert_eq!(seen, ada_calls, "every call once, newest first");

    assert_eq!(
        get(&proxy, "usr-ada", "user", &format!("/llm-calls/{bob_call}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        get(&proxy, "usr-bob", "user", &format!("/llm-calls/{bob_call}"))
            .await
            .status(),
        200
    );
    assert_eq!(
        get(&proxy, "usr-ada", "user", "/llm-calls?all_users=true")
            .await
            .status(),
        403
    );
    let everyone =
        json_of(get(&proxy, "usr-root", "admin", "/llm-calls?all_users=true").await).await;
    assert_eq!(everyone["items"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn one_call_comes_with_its_request_response_and_tool_calls() {
    let proxy = Proxy::start(|_| {}).await;
    let id = call_as(&proxy, "usr-ada", "What is 6 * 7?").await;
    wait_for_calls(&proxy, "usr-ada", 1).await;
    let call = json_of(get(&proxy, "usr-ada", "user", &format!("/llm-calls/{id}")).await).await;
    assert_eq!(call["request"]["messages"][0]["content"], "What is 6 * 7?");
    assert_eq!(
        call["response"]["choices"][0]["finish_reason"],
        "tool_calls"
    );
    let tools = call["tool_calls"].as_array().unwrap();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0]["name"], "calculator");
    assert_eq!(tools[0]["arguments"], r#"{"expression": "6 * 7"}"#);
    assert_eq!(call["status"], "ok");
    assert!(call["usage"]["output_tokens"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn traces_are_paged_by_seq_and_scoped_to_the_caller() {
    let proxy = Proxy::start(|_| {}).await;
    call_as(&proxy, "usr-ada", "one").await;
    call_as(&proxy, "usr-ada", "two").await;
    call_as(&proxy, "usr-bob", "three").await;
    wait_for_calls(&proxy, "usr-ada", 2).await;
    wait_for_calls(&proxy, "usr-bob", 1).await;

    let page = json_of(get(&proxy, "usr-ada", "user", "/traces?agent_id=math&limit=3").await).await;
    let first: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(first.len(), 3);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = json_of(
        get(
            &proxy,
            "usr-ada",
            "user",
            &format!("/traces?agent_id=math&since={cursor}"),
        )
        .await,
    )
    .await;
    let rest = rest["items"].as_array().unwrap();
    assert_eq!(
        rest.len(),
        1,
        "two non-streamed calls: request and response each"
    );
    assert!(rest.iter().all(|e| e["user_id"] == "usr-ada"));
    assert!(rest[0]["seq"].as_i64().unwrap() > *first.last().unwrap());
}

#[tokio::test]
async fn history_needs_an_identity_and_a_sane_limit() {
    let proxy = Proxy::start(|_| {}).await;
    let anonymous = proxy
        .http
        .get(format!("{}/llm-calls", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let with_agent_key = proxy
        .http
        .get(format!("{}/llm-calls", proxy.url))
        .bearer_auth(MATH_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(with_agent_key.status(), 401, "an agent key is not a user");
    for bad in [
        "/llm-calls?limit=0",
        "/llm-calls?limit=201",
        "/traces?limit=5000",
        "/traces?since=x",
    ] {
        let response = get(&proxy, "usr-ada", "user", bad).await;
        assert!([400, 422].contains(&response.status().as_u16()), "{bad}");
    }
    assert_eq!(
        get(&proxy, "usr-ada", "user", "/llm-calls/call-nope")
            .await
            .status(),
        404
    );
}
