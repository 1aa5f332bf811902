//! Budgets: a user or API key over a limit is refused before the provider
//! is asked and before anything is recorded; agents' calls never are; the
//! budget endpoints are for the services (and admins where they change
//! something); deleting a user deletes what the proxy keeps of them.

use chrono::{Datelike, Utc};
use llm_proxy_service::store::{llm_calls, tool_calls, trace_events};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{MATH_KEY, Proxy, SERVICE_TOKEN, Upstream};

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "count to three"}]})
}

/// A proxy with an upstream provider `up` (7 input + 2 output tokens a
/// call) and a default daily budget of `day_tokens` per user.
async fn proxy_with_budget(upstream: &Upstream, day_tokens: Option<i64>) -> Proxy {
    let provider = upstream.provider("ok");
    Proxy::start(move |s| {
        s.providers.insert("up".into(), provider);
        s.budgets.user.day_tokens = day_tokens;
    })
    .await
}

/// Checks a 429 `budget_exceeded` and answers its `error`.
async fn refused(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let error = body["error"].clone();
    assert_eq!(error["code"], "budget_exceeded", "{body}");
    let resets_at = chrono::DateTime::parse_from_rfc3339(error["resets_at"].as_str().unwrap())
        .unwrap()
        .to_utc();
    let wait = (resets_at - Utc::now()).num_seconds();
    assert!(
        retry_after as i64 >= wait - 5 && retry_after as i64 <= wait + 5,
        "Retry-After {retry_after} for a reset in {wait} s"
    );
    error
}

fn tomorrow_midnight() -> String {
    let tomorrow = Utc::now().date_naive().succ_opt().unwrap();
    format!("{tomorrow}T00:00:00Z")
}

#[tokio::test]
async fn a_user_over_their_daily_tokens_is_refused_before_the_provider_is_asked() {
    let upstream = Upstream::start().await;
    let proxy = proxy_with_budget(&upstream, Some(10)).await;
    // 9 tokens a call: the first call leaves 9 used (< 10), the second 18.
    for n in 1..=2 {
        let response = proxy
            .direct("usr-ada", None, &chat("up/m"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        proxy.calls_of("usr-ada", n).await;
    }
    let error = refused(
        proxy
            .direct("usr-ada", None, &chat("up/m"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        error["limit"],
        json!({"subject": "user", "period": "day", "tokens": 10, "cost": null})
    );
    assert_eq!(error["resets_at"], tomorrow_midnight());
    assert!(
        error["message"].as_str().unwrap().contains("daily"),
        "{error}"
    );
    let stream = json!({"model": "up/m", "stream": true,
        "messages": [{"role": "user", "content": "x"}]});
    refused(proxy.direct("usr-ada", None, &stream).send().await.unwrap()).await;
    assert_eq!(
        upstream.bodies.lock().unwrap().len(),
        2,
        "the provider was not asked"
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let rows = llm_calls::list_for_user(&proxy.db, "usr-ada", 100)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "no row for a refused call");
    assert!(
        llm_calls::instances_in_flight(&proxy.db, "")
            .await
            .unwrap()
            .is_empty(),
        "nor an in-flight one"
    );

    // An agent's call is inside a turn already admitted: it finishes.
    let agent = proxy
        .http
        .post(format!("{}/v1/chat/completions", proxy.url))
        .bearer_auth(MATH_KEY)
        .header("x-user-id", "usr-ada")
        .json(&chat("up/m"))
        .send()
        .await
        .unwrap();
    assert_eq!(agent.status(), 200);
    // Another user is not affected; chat-service's question answers alike.
    let bob = proxy
        .direct("usr-bob", None, &chat("up/m"))
        .send()
        .await
        .unwrap();
    assert_eq!(bob.status(), 200);
    let error = refused(proxy.budget_status("?user_id=usr-ada").await).await;
    assert_eq!(error["limit"]["subject"], "user");
    let allowed = proxy.budget_status("?user_id=usr-bob").await;
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.json::<Value>().await.unwrap(),
        json!({"allowed": true})
    );
}

#[tokio::test]
async fn an_api_key_budget_limits_that_key_and_not_its_user() {
    let upstream = Upstream::start().await;
    let proxy = proxy_with_budget(&upstream, None).await;
    let stored = proxy
        .put_budget(
            "api_key",
            "key-1",
            &json!({"period": "month", "tokens": 5, "cost": null, "user_id": "usr-ada"}),
        )
        .await;
    assert_eq!(stored.status(), 200);
    let first = proxy
        .direct("usr-ada", Some("key-1"), &chat("up/m"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200, "nothing used yet");
    proxy.calls_of("usr-ada", 1).await;
    let error = refused(
        proxy
            .direct("usr-ada", Some("key-1"), &chat("up/m"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        error["limit"],
        json!({"subject": "api_key", "period": "month", "tokens": 5, "cost": null})
    );
    let now = Utc::now().date_naive();
    let next_month = if now.month() == 12 {
        format!("{}-01-01T00:00:00Z", now.year() + 1)
    } else {
        format!("{}-{:02}-01T00:00:00Z", now.year(), now.month() + 1)
    };
    assert_eq!(error["resets_at"], next_month);
    for key in [Some("key-2"), None] {
        let other = proxy
            .direct("usr-ada", key, &chat("up/m"))
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 200, "{key:?}");
    }
    refused(
        proxy
            .budget_status("?user_id=usr-ada&api_key_id=key-1")
            .await,
    )
    .await;
    assert_eq!(
        proxy
            .budget_status("?user_id=usr-ada&api_key_id=key-2")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_stored_budget_replaces_the_default_for_its_period_until_deleted() {
    let proxy = Proxy::start(|_| {}).await;
    let read = |user: &'static str, role: &'static str, path: &'static str| {
        proxy.service(Method::GET, path, user, role).send()
    };
    let budget: Value = read("usr-ada", "user", "/budgets/user/usr-ada")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(budget["currency"], "USD");
    assert_eq!(budget["day"]["tokens"], 10_000_000, "the shipped default");
    assert_eq!(budget["day"]["source"], "default");
    assert_eq!(budget["day"]["resets_at"], tomorrow_midnight());
    assert_eq!(budget["month"]["tokens"], Value::Null);
    assert_eq!(budget["month"]["source"], "default");

    // A stored daily budget with no token limit but a cost limit of 0.5.
    let stored = proxy
        .put_budget(
            "user",
            "usr-ada",
            &json!({"period": "day", "tokens": null, "cost": 0.5, "user_id": "usr-ada"}),
        )
        .await;
    assert_eq!(stored.status(), 200);
    let stored: Value = stored.json().await.unwrap();
    assert_eq!(stored["cost"], 0.5);
    assert_eq!(stored["tokens"], Value::Null);
    assert_eq!(stored["period"], "day");
    let response = proxy.complete(&chat("builtin")).await;
    assert_eq!(response.status(), 200);
    proxy.calls(1).await;
    let budget: Value = read("usr-root", "admin", "/budgets/user/usr-ada")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(budget["day"]["source"], "stored");
    assert_eq!(budget["day"]["tokens"], Value::Null);
    assert_eq!(budget["day"]["cost"], 0.5);
    assert_eq!(
        budget["day"]["used"]["tokens"], 6,
        "3 input and 3 output tokens"
    );
    assert_eq!(
        budget["day"]["used"]["cost"], 0.0,
        "the builtin model is free"
    );
    assert_eq!(budget["month"]["used"]["tokens"], 6);
    assert_eq!(proxy.budget_status("?user_id=usr-ada").await.status(), 200);

    // A monthly limit already reached; then deleted, back to no limit.
    let month = json!({"period": "month", "tokens": 6, "user_id": "usr-ada"});
    assert_eq!(
        proxy.put_budget("user", "usr-ada", &month).await.status(),
        200
    );
    let error = refused(proxy.budget_status("?user_id=usr-ada").await).await;
    assert_eq!(error["limit"]["period"], "month");
    let deleted = proxy
        .service(
            Method::DELETE,
            "/budgets/user/usr-ada?period=month",
            "usr-root",
            "admin",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(proxy.budget_status("?user_id=usr-ada").await.status(), 200);

    // A cost limit of 0 is reached at once, even by free calls.
    let zero = json!({"period": "day", "cost": 0, "user_id": "usr-ada"});
    assert_eq!(
        proxy.put_budget("user", "usr-ada", &zero).await.status(),
        200
    );
    let error = refused(proxy.budget_status("?user_id=usr-ada").await).await;
    assert_eq!(error["limit"]["cost"], 0.0);
    let deleted = proxy
        .service(Method::DELETE, "/budgets/user/usr-ada", "usr-root", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204, "every period");
    let budget: Value = read("usr-ada", "user", "/budgets/user/usr-ada")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(budget["day"]["source"], "default");
    assert_eq!(budget["day"]["tokens"], 10_000_000);
}

#[tokio::test]
async fn deleting_a_user_deletes_their_calls_traces_and_budgets_and_nobody_elses() {
    let proxy = Proxy::start(|_| {}).await;
    let calculator = json!({"type": "function", "function": {"name": "calculator", "parameters": {"type": "object"}}});
    for user in ["usr-ada", "usr-bob"] {
        let response = proxy
            .http
            .post(format!("{}/v1/chat/completions", proxy.url))
            .bearer_auth(MATH_KEY)
            .header("x-user-id", user)
            .json(&json!({"model": "builtin", "tools": [calculator],
                "messages": [{"role": "user", "content": "What is 6 * 7?"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let adas = proxy.calls_of("usr-ada", 1).await;
    proxy.calls_of("usr-bob", 1).await;
    assert_eq!(
        tool_calls::for_call(&proxy.db, &adas[0].id)
            .await
            .unwrap()
            .len(),
        1
    );
    for (subject, id) in [("user", "usr-ada"), ("api_key", "key-ada")] {
        let body = json!({"period": "day", "tokens": 5, "user_id": "usr-ada"});
        assert_eq!(proxy.put_budget(subject, id, &body).await.status(), 200);
    }
    let bob_budget = json!({"period": "day", "tokens": 7, "user_id": "usr-bob"});
    assert_eq!(
        proxy
            .put_budget("user", "usr-bob", &bob_budget)
            .await
            .status(),
        200
    );
    let db = proxy.db.clone();
    let events = move |user: &'static str| {
        let db = db.clone();
        async move {
            let filter = trace_events::EventFilter {
                user_id: Some(user.into()),
                limit: 1000,
                ..trace_events::EventFilter::default()
            };
            trace_events::list(&db, &filter).await
        }
    };
    for _ in 0..200 {
        if !events("usr-ada").await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(!events("usr-ada").await.unwrap().is_empty());

    for _ in 0..2 {
        let response = proxy
            .http
            .delete(format!("{}/internal/users/usr-ada", proxy.url))
            .header("x-service-token", SERVICE_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "and again: idempotent");
    }
    assert!(
        llm_calls::list_for_user(&proxy.db, "usr-ada", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        tool_calls::for_call(&proxy.db, &adas[0].id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(events("usr-ada").await.unwrap().is_empty());
    for path in ["/budgets/user/usr-ada", "/budgets/api_key/key-ada"] {
        let budget: Value = proxy
            .service(Method::GET, path, "usr-root", "admin")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(budget["day"]["source"], "default", "{path}");
    }

    assert_eq!(
        llm_calls::list_for_user(&proxy.db, "usr-bob", 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(!events("usr-bob").await.unwrap().is_empty());
    let bob: Value = proxy
        .service(Method::GET, "/budgets/user/usr-bob", "usr-root", "admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bob["day"]["tokens"], 7);
}
