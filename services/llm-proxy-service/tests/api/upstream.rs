//! llm-proxy-service in front of a real HTTP upstream that the test starts:
//! pass-through, retry, fallback, a stream that dies, a refusal.

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::{Proxy, Upstream, openai_provider, sse_data};

async fn proxy_for(upstream: &Upstream) -> Proxy {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let providers = [
        ("ok", upstream.provider("ok")),
        ("flaky", upstream.provider("flaky")),
        ("dies", upstream.provider("dies")),
        ("refuses", upstream.provider("refuses")),
        (
            "down",
            openai_provider(&format!("http://127.0.0.1:{dead}/v1")),
        ),
    ];
    Proxy::start(|settings| {
        for (name, provider) in providers {
            settings.providers.insert(name.into(), provider);
        }
        settings
            .models
            .aliases
            .insert("resilient".into(), vec!["down/m".into(), "ok/m".into()]);
        settings.retry.max_attempts = 2;
        settings.retry.base_delay_ms = 10;
    })
    .await
}

fn body(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "count to three"}],
        "stream": stream,
        "temperature": 0.25,
        "seed": 7,
        "metadata": {"anything": ["the", "proxy", "does", "not", "model"]}
    })
}

#[tokio::test]
async fn fields_the_proxy_does_not_model_reach_the_upstream_untouched() {
    let upstream = Upstream::start().await;
    let proxy = proxy_for(&upstream).await;
    let response = proxy.complete(&body("ok/m", false)).await;
    assert_eq!(response.status(), 200);
    let completion: Value = response.json().await.unwrap();
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        "from upstream"
    );
    assert_eq!(
        completion["system_fingerprint"], "fp_test",
        "the upstream's answer is passed on as it is"
    );

    let sent = upstream.bodies.lock().unwrap()[0].clone();
    let mut expected = body("m", false);
    expected["model"] = json!("m");
    assert_eq!(sent, expected);

    let calls = proxy.calls(1).await;
    assert_eq!(calls[0].provider, "ok");
    assert_eq!(calls[0].upstream_model.as_deref(), Some("m"));
    assert_eq!((calls[0].input_tokens, calls[0].output_tokens), (7, 2));
}

#[tokio::test]
async fn streaming_asks_the_upstream_for_usage_and_keeps_it_from_a_client_that_did_not() {
    let upstream = Upstream::start().await;
    let proxy = proxy_for(&upstream).await;
    let response = proxy.complete(&body("ok/m", true)).await;
    assert_eq!(response.status(), 200);
    let data = sse_data(response).await;
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    assert!(
        data.iter().all(|d| !d.contains("\"usage\"")),
        "usage chunk passed to a client that did not ask: {data:?}"
    );
    let sent = upstream.bodies.lock().unwrap()[0].clone();
    assert_eq!(sent["stream_options"]["include_usage"], true);

    let calls = proxy.calls(1).await;
    assert_eq!(calls[0].status, "ok");
    assert_eq!((calls[0].input_tokens, calls[0].output_tokens), (7, 3));
    let response: Value = serde_json::from_str(calls[0].response.as_deref().unwrap()).unwrap();
    assert_eq!(response["content"], "one two three");
}

#[tokio::test]
async fn a_500_before_the_first_byte_is_retried() {
    let upstream = Upstream::start().await;
    let proxy = proxy_for(&upstream).await;
    let response = proxy.complete(&body("flaky/m", false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(upstream.flaky_hits(), 2);
    let calls = proxy.calls(1).await;
    assert_eq!(calls.len(), 1, "one call, one row, however many attempts");
    assert_eq!(calls[0].attempts, 2);
    assert_eq!(calls[0].status, "ok");
}

#[tokio::test]
async fn an_upstream_that_is_down_falls_back_to_the_next_target() {
    let upstream = Upstream::start().await;
    let proxy = proxy_for(&upstream).await;
    for stream in [false, true] {
        let response = proxy.complete(&body("resilient", stream)).await;
        assert_eq!(response.status(), 200, "stream: {stream}");
        if stream {
            assert_eq!(
                sse_data(response).await.last().map(String::as_str),
                Some("[DONE]")
            );
        }
    }
    let calls = proxy.calls(2).await;
    for call in calls {
        assert_eq!(call.status, "ok");
        assert_eq!(call.provider, "ok");
        assert_eq!(call.model, "resilient");
        assert_eq!(
            call.attempts, 3,
            "two attempts at the dead target, then the next one"
        );
    }
}

#[tokio::test]
async fn a_stream_that_dies_gives_the_client_an_error_and_records_the_partial_output() {
    let upstream = Upstream::start().await;
    let proxy = proxy_for(&upstream).await;
    let response = proxy.complete(&body("dies/m", true)).await;
    assert_eq!(response.status(), 200);
    let data = sse_data(response).await;
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "stream_broken", "{data:?}");
    assert!(!data.contains(&"[DONE]".to_owned()));

    let calls = proxy.calls(1).await;
    assert_eq!(calls[0].status, "error");
    assert!(
        calls[0].error.as_deref().unwrap().contains("broke"),
        "{:?}",
        calls[0].error
    );
    let partial: Value = serde_json::from_str(calls[0].response.as_deref().unwrap()).unwrap();
    assert_eq!(partial["content"], "one two ");
}

#[tokio::test]
async fn every_target_failing_is_a_502_and_still_recorded() {
    let upstream = Upstream::start().await;
    let proxy = proxy_for(&upstream).await;
    let response = proxy.complete(&body("down/m", false)).await;
    assert_eq!(response.status(), 502);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "upstream_unavailable");
    let calls = proxy.calls(1).await;
    assert_eq!(calls[0].status, "error");
    assert_eq!(calls[0].attempts, 2);
}

#[tokio::test]
async fn an_upstream_refusal_is_passed_to_the_client_without_retry() {
    let upstream = Upstream::start().await;
    let proxy = proxy_for(&upstream).await;
    let response = proxy.complete(&body("refuses/m", false)).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(
        upstream.bodies.lock().unwrap().len(),
        1,
        "a 4xx is not retried"
    );
    let calls = proxy.calls(1).await;
    assert_eq!(calls[0].status, "error");
}

/// The upstream writes its seven frames at once, one TCP write; the client
/// gets them in fewer writes than frames (`confab_kit::coalesce` joins what
/// arrived together), the bytes unchanged.
#[tokio::test]
async fn frames_that_arrived_together_reach_the_client_in_fewer_writes() {
    let upstream = Upstream::start().await;
    let proxy = proxy_for(&upstream).await;
    let mut request = body("ok/m", true);
    request["stream_options"] = json!({"include_usage": true});
    let response = proxy.complete(&request).await;
    assert_eq!(response.status(), 200);
    let pieces: Vec<Vec<u8>> = response
        .bytes_stream()
        .map(|piece| piece.unwrap().to_vec())
        .collect()
        .await;
    let text = String::from_utf8(pieces.concat()).unwrap();
    let frames: Vec<&str> = text.split_terminator("\n\n").collect();
    assert_eq!(frames.len(), 7, "{text}");
    assert!(
        frames.iter().all(|frame| frame.starts_with("data: ")),
        "{text}"
    );
    assert_eq!(frames.last(), Some(&"data: [DONE]"));
    assert!(
        pieces.len() < frames.len(),
        "{} frames in {} writes",
        frames.len(),
        pieces.len()
    );
}
