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

async fn put_budget(proxy: &Proxy, subject: &str, id: &str, body: &Value) -> reqwest::Response {
    proxy
        .service(
            Method::PUT,
            &format!("/budgets/{subject}/{id}"),
            "usr-root",
            "admin",
        )
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn status(proxy: &Proxy, query: &str) -> reqwest::Response {
    proxy
        .http
        .get(format!("{}/budget-status{query}", proxy.url))
        .header("x-service-token", SERVICE_TOKEN)
        .send()
        .await
        .unwrap()
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
    let error = refused(status(&proxy, "?user_id=usr-ada").await).await;
    assert_eq!(error["limit"]["subject"], "user");
    let allowed = status(&proxy, "?user_id=usr-bob").await;
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
    let stored = put_budget(
        &proxy,
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
    refused(status(&proxy, "?user_id=usr-ada&api_key_id=key-1").await).await;
    assert_eq!(
        status(&proxy, "?user_id=usr-ada&api_key_id=key-2")
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
    let stored = put_budget(
        &proxy,
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
    assert_eq!(status(&proxy, "?user_id=usr-ada").await.status(), 200);

    // A monthly limit already reached; then deleted, back to no limit.
    let month = json!({"period": "month", "tokens": 6, "user_id": "usr-ada"});
    assert_eq!(
        put_budget(&proxy, "user", "usr-ada", &month).await.status(),
        200
    );
    let error = refused(status(&proxy, "?user_id=usr-ada").await).await;
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
    assert_eq!(status(&proxy, "?user_id=usr-ada").await.status(), 200);

    // A cost limit of 0 is reached at once, even by free calls.
    let zero = json!({"period": "day", "cost": 0, "user_id": "usr-ada"});
    assert_eq!(
        put_budget(&proxy, "user", "usr-ada", &zero).await.status(),
        200
    );
    let error = refused(status(&proxy, "?user_id=usr-ada").await).await;
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
async fn budget_endpoints_are_for_the_services_and_changes_for_admins() {
    let proxy = Proxy::start(|_| {}).await;
    let body = json!({"period": "day", "tokens": 5, "user_id": "usr-ada"});
    let endpoints = [
        (Method::PUT, "/budgets/user/usr-ada"),
        (Method::DELETE, "/budgets/user/usr-ada"),
        (Method::GET, "/budgets/user/usr-ada"),
        (Method::GET, "/budget-status?user_id=usr-ada"),
        (Method::DELETE, "/internal/users/usr-ada"),
    ];
    for (method, path) in &endpoints {
        let url = format!("{}{path}", proxy.url);
        let attempts = [
            proxy.http.request(method.clone(), &url),
            proxy
                .http
                .request(method.clone(), &url)
                .header("x-service-token", "wrong-token")
                .header("x-user-id", "usr-root")
                .header("x-user-role", "admin"),
            proxy
                .http
                .request(method.clone(), &url)
                .bearer_auth(SERVICE_TOKEN),
            proxy
                .http
                .request(method.clone(), &url)
                .bearer_auth(MATH_KEY),
            proxy
                .http
                .request(method.clone(), &url)
                .header("x-user-id", "usr-root")
                .header("x-user-role", "admin"),
        ];
        for attempt in attempts {
            let response = attempt.json(&body).send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path}");
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["error"]["code"], "unauthorized");
        }
    }
    for (method, path) in [
        (Method::PUT, "/budgets/user/usr-ada"),
        (Method::DELETE, "/budgets/user/usr-ada"),
        (Method::PUT, "/budgets/api_key/key-1"),
    ] {
        let response = proxy
            .service(method.clone(), path, "usr-ada", "user")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{method} {path}");
    }
    // A user reads their own budget, not another's.
    let own = proxy.service(Method::GET, "/budgets/user/usr-ada", "usr-ada", "user");
    assert_eq!(own.send().await.unwrap().status(), 200);
    let other = proxy.service(Method::GET, "/budgets/user/usr-bob", "usr-ada", "user");
    assert_eq!(other.send().await.unwrap().status(), 404);
    let key = json!({"period": "day", "tokens": 5, "user_id": "usr-bob"});
    assert_eq!(
        put_budget(&proxy, "api_key", "key-bob", &key)
            .await
            .status(),
        200
    );
    let bobs_key = proxy.service(Method::GET, "/budgets/api_key/key-bob", "usr-ada", "user");
    assert_eq!(bobs_key.send().await.unwrap().status(), 404);
    let as_bob = proxy.service(Method::GET, "/budgets/api_key/key-bob", "usr-bob", "user");
    let as_bob: Value = as_bob.send().await.unwrap().json().await.unwrap();
    assert_eq!(as_bob["day"]["tokens"], 5);
    // The service token alone has no admin to act for.
    let no_user = proxy
        .http
        .put(format!("{}/budgets/user/usr-ada", proxy.url))
        .header("x-service-token", SERVICE_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(no_user.status(), 401);
}

#[tokio::test]
async fn a_budget_body_or_path_that_is_not_a_budget_is_refused_clearly() {
    let proxy = Proxy::start(|_| {}).await;
    let send = |path: &str, body: Vec<u8>| {
        proxy
            .service(Method::PUT, path, "usr-root", "admin")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let path = "/budgets/user/usr-ada";
    let nested = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (path, b"".to_vec(), 400, "malformed_json"),
        (path, b"{\"period\":".to_vec(), 400, "malformed_json"),
        (path, b"\xff\xfe".to_vec(), 400, "malformed_json"),
        (path, nested.into_bytes(), 400, "malformed_json"),
        (path, b"[1, 2]".to_vec(), 422, "invalid_body"),
        (path, b"{}".to_vec(), 422, "invalid_body"),
        (
            path,
            br#"{"period":"day","tokens":5,"user_id":"usr-ada","admin":true}"#.to_vec(),
            422,
            "invalid_body",
        ),
        (
            path,
            br#"{"period":"week","user_id":"usr-ada"}"#.to_vec(),
            422,
            "invalid_body",
        ),
        (
            path,
            br#"{"period":"day","tokens":-1,"user_id":"usr-ada"}"#.to_vec(),
            422,
            "invalid_body",
        ),
        (
            path,
            br#"{"period":"day","tokens":1.5,"user_id":"usr-ada"}"#.to_vec(),
            422,
            "invalid_body",
        ),
        (
            path,
            br#"{"period":"day","tokens":"5","user_id":"usr-ada"}"#.to_vec(),
            422,
            "invalid_body",
        ),
        (
            path,
            br#"{"period":"day","tokens":1000000000000001,"user_id":"usr-ada"}"#.to_vec(),
            422,
            "invalid_body",
        ),
        (
            path,
            br#"{"period":"day","cost":-0.01,"user_id":"usr-ada"}"#.to_vec(),
            422,
            "invalid_body",
        ),
        (
            path,
            br#"{"period":"day","cost":1e300,"user_id":"usr-ada"}"#.to_vec(),
            422,
            "invalid_body",
        ),
        (
            path,
            br#"{"period":"day","cost":1e999,"user_id":"usr-ada"}"#.to_vec(),
            400,
            "malformed_json",
        ),
        (
            path,
            br#"{"period":"day","tokens":5,"user_id":"usr-bob"}"#.to_vec(),
            422,
            "invalid_body",
        ),
        (
            path,
            br#"{"period":"day","tokens":5,"user_id":""}"#.to_vec(),
            400,
            "invalid_id",
        ),
        (
            path,
            br#"{"period":"day","tokens":5}"#.to_vec(),
            422,
            "invalid_body",
        ),
        (
            "/budgets/team/usr-ada",
            br#"{"period":"day","tokens":5,"user_id":"usr-ada"}"#.to_vec(),
            400,
            "invalid_subject",
        ),
        (
            "/budgets/api_key/key%01x",
            br#"{"period":"day","tokens":5,"user_id":"usr-ada"}"#.to_vec(),
            400,
            "invalid_id",
        ),
    ];
    for (path, body, status, code) in cases {
        let shown = String::from_utf8_lossy(&body)
            .chars()
            .take(60)
            .collect::<String>();
        let response = send(path, body).await.unwrap();
        assert_eq!(response.status(), status, "{path} {shown}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], code, "{path} {shown}: {error}");
    }
    let long_id = format!("/budgets/api_key/{}", "k".repeat(129));
    let response = send(
        &long_id,
        br#"{"period":"day","user_id":"usr-ada"}"#.to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 400);
    let huge = format!(
        r#"{{"period":"day","user_id":"usr-ada","pad":"{}"}}"#,
        "x".repeat(20 * 1024)
    );
    let response = send(path, huge.into_bytes()).await.unwrap();
    assert_eq!(response.status(), 413);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "body_too_large");

    for query in ["?period=week", "?period="] {
        let response = proxy
            .service(
                Method::DELETE,
                &format!("{path}{query}"),
                "usr-root",
                "admin",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
    }
    let no_user = status(&proxy, "").await;
    assert_eq!(no_user.status(), 400);
    let error: Value = no_user.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_query");
    // Nothing of the refused bodies was stored.
    let budget: Value = proxy
        .service(Method::GET, path, "usr-root", "admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(budget["day"]["source"], "default");
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
        assert_eq!(put_budget(&proxy, subject, id, &body).await.status(), 200);
    }
    let bob_budget = json!({"period": "day", "tokens": 7, "user_id": "usr-bob"});
    assert_eq!(
        put_budget(&proxy, "user", "usr-bob", &bob_budget)
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
