//! What calls cost: the price of the model that answered, in the response's
//! `usage.cost`, on the call's row and in the metrics; nothing for the
//! builtin model; unknown (and counted) for a model without a price.

use std::str::FromStr;

use llm_proxy_service::Settings;
use llm_proxy_service::pricing::ModelPrice;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::common::{MATH_KEY, Proxy, SERVICE_TOKEN, Upstream, metric, sse_data};

fn price(input: &str, output: &str, cached: Option<&str>) -> ModelPrice {
    ModelPrice {
        input_per_mtok: Decimal::from_str(input).unwrap(),
        output_per_mtok: Decimal::from_str(output).unwrap(),
        cached_input_per_mtok: cached.map(|c| Decimal::from_str(c).unwrap()),
    }
}

/// The proxy in front of `upstream`'s `cached` behaviour as provider
/// `provider` (named per test: the metrics are the process's), priced
/// 0.15 / 0.60 / 0.075 per million tokens.
async fn priced_proxy(upstream: &Upstream, provider: &str, priced: bool) -> Proxy {
    let settings = upstream.provider("cached");
    let provider = provider.to_owned();
    Proxy::start(move |s: &mut Settings| {
        s.providers.insert(provider.clone(), settings);
        if priced {
            s.pricing.models.insert(
                format!("{provider}/m"),
                price("0.15", "0.60", Some("0.075")),
            );
        }
    })
    .await
}

fn body(model: &str, stream: bool, include_usage: bool) -> Value {
    let mut body = json!({"model": model, "stream": stream,
        "messages": [{"role": "user", "content": "count to three"}]});
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

#[tokio::test]
async fn a_priced_model_costs_what_its_prices_say_in_the_response_the_row_and_the_metrics() {
    let upstream = Upstream::start().await;
    let proxy = priced_proxy(&upstream, "pricedp", true).await;

    // 7 input tokens, 4 of them cached, 2 output:
    // 3 × 0.15 + 4 × 0.075 + 2 × 0.60 = 1.95 per million → 1,950 nano-units.
    let response = proxy.complete(&body("pricedp/m", false, false)).await;
    assert_eq!(response.status(), 200);
    let completion: Value = response.json().await.unwrap();
    assert_eq!(completion["usage"]["cost"].as_f64(), Some(0.000_001_95));
    assert_eq!(completion["usage"]["prompt_tokens"], 7);

    // Streamed with 3 output tokens: 0.45 + 0.30 + 1.80 = 2.55 → 2,550.
    let response = proxy.complete(&body("pricedp/m", true, true)).await;
    let data = sse_data(response).await;
    let usage_chunks: Vec<Value> = data
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|c| !c["usage"].is_null())
        .collect();
    assert_eq!(usage_chunks.len(), 1, "{data:?}");
    assert_eq!(
        usage_chunks[0]["usage"]["cost"].as_f64(),
        Some(0.000_002_55)
    );
    assert_eq!(usage_chunks[0]["usage"]["completion_tokens"], 3);

    // Without include_usage the client gets no usage, the row its cost.
    let response = proxy.complete(&body("pricedp/m", true, false)).await;
    let data = sse_data(response).await;
    assert!(data.iter().all(|d| !d.contains("\"usage\"")), "{data:?}");

    let calls = proxy.calls(3).await;
    let mut costs: Vec<(Option<i64>, i64)> = calls
        .iter()
        .map(|c| (c.cost_nanos, c.cached_input_tokens))
        .collect();
    costs.sort();
    assert_eq!(
        costs,
        vec![(Some(1_950), 4), (Some(2_550), 4), (Some(2_550), 4)]
    );

    let metrics = proxy.metrics().await;
    let labels = ["model=\"pricedp/m\"", "agent=\"math\""];
    assert_eq!(
        metric(&metrics, "llm_proxy_cost_nanos_total", &labels),
        (1_950 + 2 * 2_550) as f64
    );
    let input = [labels[0], labels[1], "kind=\"input\""];
    let output = [labels[0], labels[1], "kind=\"output\""];
    assert_eq!(metric(&metrics, "llm_proxy_tokens_total", &input), 21.0);
    assert_eq!(metric(&metrics, "llm_proxy_tokens_total", &output), 8.0);
}

#[tokio::test]
async fn the_builtin_model_costs_nothing_even_when_priced() {
    let proxy = Proxy::start(|s| {
        s.pricing
            .models
            .insert("builtin/builtin".into(), price("100", "100", None));
    })
    .await;
    let response = proxy.complete(&body("builtin", false, false)).await;
    let completion: Value = response.json().await.unwrap();
    assert_eq!(completion["usage"]["cost"].as_f64(), Some(0.0));
    let response = proxy.complete(&body("builtin", true, true)).await;
    let data = sse_data(response).await;
    let last: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(last["usage"]["cost"].as_f64(), Some(0.0), "{data:?}");
    for call in proxy.calls(2).await {
        assert_eq!(call.cost_nanos, Some(0));
        assert!(call.input_tokens > 0);
    }
}

#[tokio::test]
async fn a_model_without_a_price_has_no_cost_and_is_counted() {
    let upstream = Upstream::start().await;
    let proxy = priced_proxy(&upstream, "unpricedp", false).await;
    let response = proxy.complete(&body("unpricedp/m", false, false)).await;
    let completion: Value = response.json().await.unwrap();
    assert!(completion["usage"].get("cost").is_none(), "{completion}");
    assert_eq!(completion["usage"]["prompt_tokens"], 7);
    let response = proxy.complete(&body("unpricedp/m", true, true)).await;
    let data = sse_data(response).await;
    let usage: Vec<Value> = data
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|c| !c["usage"].is_null())
        .collect();
    assert!(usage[0]["usage"].get("cost").is_none(), "{data:?}");

    for call in proxy.calls(2).await {
        assert_eq!(call.cost_nanos, None);
        assert_eq!(call.input_tokens, 7);
    }
    let metrics = proxy.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "llm_proxy_cost_unknown_total",
            &["model=\"unpricedp/m\""]
        ),
        2.0,
        "once per call"
    );
}

#[tokio::test]
async fn the_api_key_a_trusted_caller_names_is_kept_on_the_call() {
    let proxy = Proxy::start(|_| {}).await;
    let with_agent_key = proxy
        .completions(Some(MATH_KEY))
        .header("x-api-key-id", "key-agent")
        .json(&body("builtin", false, false))
        .send()
        .await
        .unwrap();
    assert_eq!(with_agent_key.status(), 200);
    let from_gateway = proxy
        .completions(None)
        .header("x-service-token", SERVICE_TOKEN)
        .header("x-api-key-id", "key-gateway")
        .json(&body("builtin", false, false))
        .send()
        .await
        .unwrap();
    assert_eq!(from_gateway.status(), 200);
    let mut keys: Vec<Option<String>> = proxy
        .calls(2)
        .await
        .into_iter()
        .map(|c| c.api_key_id)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![Some("key-agent".into()), Some("key-gateway".into())]
    );
    let untrusted = proxy
        .completions(None)
        .header("x-api-key-id", "key-forged")
        .json(&body("builtin", false, false))
        .send()
        .await
        .unwrap();
    assert_eq!(untrusted.status(), 401, "no credential, no attribution");
}
