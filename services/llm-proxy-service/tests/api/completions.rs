//! llm-proxy-service's OpenAI-compatible API on the builtin model, with the
//! recording of every call.

use llm_proxy_service::store::llm_calls;
use serde_json::{Value, json};

use crate::common::{MATH_KEY, Proxy, sse_data};

fn request(stream: bool, include_usage: bool) -> Value {
    let mut body = json!({
        "model": "builtin",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "echo these four words"}
        ],
        "stream": stream,
    });
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

#[tokio::test]
async fn a_completion_answers_and_is_recorded_with_its_usage() {
    let app = Proxy::start(|_| {}).await;
    let response = app.complete(&request(false, false)).await;
    assert_eq!(response.status(), 200);
    let call_id = response.headers()["x-confab-call-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let overhead: f64 = response.headers()["x-confab-overhead-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(overhead >= 0.0);
    let completion: Value = response.json().await.unwrap();
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        "echo these four words"
    );
    assert_eq!(completion["usage"]["completion_tokens"], 4);
    assert_eq!(completion["usage"]["prompt_tokens"], 2 + 4);

    let calls = app.calls(1).await;
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.id, call_id);
    assert_eq!(call.agent_id.as_deref(), Some("math"));
    assert_eq!(call.conversation_id.as_deref(), Some("conv-1"));
    assert_eq!((call.input_tokens, call.output_tokens), (6, 4));
    assert_eq!(call.status, "ok");
    assert!(!call.stream);
}

#[tokio::test]
async fn a_streamed_completion_sends_usage_only_to_a_client_that_asked() {
    let app = Proxy::start(|_| {}).await;
    for include_usage in [false, true] {
        let response = app.complete(&request(true, include_usage)).await;
        assert_eq!(response.status(), 200);
        let data = sse_data(response).await;
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
        let parsed: Vec<Value> = data[..data.len() - 1]
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let text: String = parsed
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "echo these four words");
        let usage: Vec<&Value> = parsed.iter().filter(|c| !c["usage"].is_null()).collect();
        if include_usage {
            assert_eq!(usage.len(), 1);
            assert_eq!(usage[0]["usage"]["completion_tokens"], 4);
        } else {
            assert!(
                usage.is_empty(),
                "usage chunk sent to a client that did not ask"
            );
        }
    }
    let calls = app.calls(2).await;
    assert_eq!(calls.len(), 2);
    for call in calls {
        assert!(call.stream);
        assert_eq!(
            call.output_tokens, 4,
            "usage is recorded whether or not the client asked"
        );
        assert_eq!(call.status, "ok");
    }
}

#[tokio::test]
async fn a_model_that_breaks_off_streams_what_it_said_then_the_error_and_records_both() {
    // The builtin model, with no delay, hands the proxy its words and the
    // break in one read: the words still go out, ahead of the error.
    let app = Proxy::start(|_| {}).await;
    let body = json!({
        "model": "builtin",
        "stream": true,
        "messages": [{"role": "user", "content": "simulate an error: disk full"}],
    });
    let response = app.complete(&body).await;
    assert_eq!(response.status(), 200);
    let data = sse_data(response).await;
    let parsed: Vec<Value> = data
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let (last, chunks) = parsed.split_last().unwrap();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Let me think about that", "{data:?}");
    assert_eq!(last["error"]["code"], "stream_broken");
    assert_eq!(
        last["error"]["message"],
        "the model broke off (simulated): disk full"
    );
    let calls = app.calls(1).await;
    assert_eq!(calls[0].status, "error");
    let partial: Value = serde_json::from_str(calls[0].response.as_deref().unwrap()).unwrap();
    assert_eq!(partial["content"], "Let me think about that");

    // Not streamed, the same rule is an HTTP 500 with OpenAI's error body.
    let mut body = body;
    body["stream"] = json!(false);
    let response = app.complete(&body).await;
    assert_eq!(response.status(), 500);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "builtin_failure");
}

#[tokio::test]
async fn callers_without_a_known_key_are_refused_and_nothing_is_recorded() {
    let app = Proxy::start(|_| {}).await;
    for key in [None, Some("not-a-key")] {
        let response = app
            .completions(key)
            .json(&request(false, false))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{key:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let response = app
        .completions(None)
        .header("x-service-token", "wrong")
        .json(&request(false, false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        llm_calls::list_for_user(&app.db, "usr-ada", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn bad_requests_get_a_json_error_and_are_not_recorded() {
    let app = Proxy::start(|_| {}).await;
    let cases = [
        ("{\"model\": ".to_owned(), 400, "malformed_json"),
        (json!({"model": "builtin"}).to_string(), 422, "invalid_body"),
        (
            json!({"model": "builtin", "messages": []}).to_string(),
            422,
            "invalid_body",
        ),
        (
            json!({"model": "nope/none", "messages": [{"role": "user", "content": "x"}]})
                .to_string(),
            404,
            "not_found",
        ),
        (
            format!(
                "{{\"model\":\"builtin\",\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
                "x".repeat(5 * 1024 * 1024)
            ),
            413,
            "body_too_large",
        ),
    ];
    for (body, status, code) in cases {
        let response = app
            .completions(Some(MATH_KEY))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], code);
    }
    assert!(
        llm_calls::list_for_user(&app.db, "usr-ada", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// GET `path` on the proxy, with `key` as the bearer token when there is one.
async fn get(app: &Proxy, path: &str, key: Option<&str>) -> reqwest::Response {
    let request = app.http.get(format!("{}{path}", app.url));
    match key {
        Some(key) => request.bearer_auth(key),
        None => request,
    }
    .send()
    .await
    .unwrap()
}

/// The JSON body of a GET of `path` with the math agent's key.
async fn get_json(app: &Proxy, path: &str) -> Value {
    get(app, path, Some(MATH_KEY)).await.json().await.unwrap()
}

#[tokio::test]
async fn models_lists_the_builtin_model() {
    let app = Proxy::start(|_| {}).await;
    let anonymous = get(&app, "/v1/models", None).await;
    assert_eq!(anonymous.status(), 401);
    let one = get_json(&app, "/v1/models/builtin").await;
    assert_eq!(one["id"], "builtin");
    let missing = get(&app, "/v1/models/nope", Some(MATH_KEY)).await;
    assert_eq!(missing.status(), 404);
    let models = get_json(&app, "/v1/models").await;
    assert_eq!(models["object"], "list");
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "builtin")
    );
}
