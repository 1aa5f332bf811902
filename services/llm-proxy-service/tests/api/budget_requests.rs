//! The budget endpoints' refusals: without the service token, without an
//! admin where they change something, another user's budget, and bodies,
//! paths and queries that are not a budget.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{MATH_KEY, Proxy, SERVICE_TOKEN};

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
        proxy.put_budget("api_key", "key-bob", &key).await.status(),
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
    let no_user = proxy.budget_status("").await;
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
