//! The audit trail (issue 21): a row for each audited action, read by
//! admins page by page or exported as JSON lines, and never changed.

use confab_kit::db::DbError;
use diesel_async::RunQueryDsl;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{ADMIN_NAME, Stack, USER_PASSWORD, fetch_json, send};

/// The trail's rows matching `query`, as an admin reads them.
async fn audit_rows(stack: &Stack, admin: &str, query: &str) -> Vec<Value> {
    let page = fetch_json(
        stack
            .get(&format!("/api/v1/admin/audit{query}"))
            .bearer_auth(admin),
    )
    .await;
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn every_audited_action_leaves_one_row_with_its_actor_target_and_address() {
    let stack = Stack::start_with_admin().await;
    let ada = stack.user("ada").await;
    let bob = stack.user("bob").await;
    let admin = stack.admin_token().await;
    let admin_id = stack.me(&admin).await.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = |token: &str, method: Method, path: &str, body: Option<Value>| {
        let request = stack.request(method, path).bearer_auth(token);
        send(match body {
            Some(body) => request.json(&body),
            None => request,
        })
    };

    assert_eq!(stack.login("ada", "not her password").await.status(), 401);
    assert_eq!(stack.login("nobody", "whatever pass").await.status(), 401);
    let key: Value = call(
        &ada.token,
        Method::POST,
        "/api/v1/api-keys",
        Some(json!({"name": "script", "scopes": ["chat"]})),
    )
    .await
    .json()
    .await
    .unwrap();
    let key_id = key["id"].as_str().unwrap();
    let revoked = call(
        &ada.token,
        Method::DELETE,
        &format!("/api/v1/api-keys/{key_id}"),
        None,
    )
    .await;
    assert_eq!(revoked.status(), 204);
    let changed = call(
        &ada.token,
        Method::POST,
        "/api/v1/auth/password",
        Some(json!({"current_password": USER_PASSWORD, "new_password": "a brand new password"})),
    )
    .await;
    assert_eq!(changed.status(), 200);
    let bob_path = format!("/api/v1/admin/users/{}", bob.id);
    for body in [
        json!({"role": "admin"}),
        json!({"disabled": true}),
        json!({"disabled": false}),
    ] {
        assert_eq!(
            call(&admin, Method::PATCH, &bob_path, Some(body))
                .await
                .status(),
            200
        );
    }
    let reset = call(
        &admin,
        Method::POST,
        &format!("{bob_path}/password"),
        Some(json!({"password": "bob's new password"})),
    )
    .await;
    assert_eq!(reset.status(), 204);
    let budget = call(
        &admin,
        Method::PUT,
        &format!("/api/v1/admin/users/{}/budget", ada.id),
        Some(json!({"period": "day", "tokens": 1000, "cost": null})),
    )
    .await;
    assert_eq!(budget.status(), 200);
    let rotated = call(&admin, Method::POST, "/api/v1/admin/signing-keys", None).await;
    assert_eq!(rotated.status(), 201);
    let all = call(
        &admin,
        Method::GET,
        "/api/v1/llm-calls?all_users=true",
        None,
    )
    .await;
    assert_eq!(all.status(), 200);
    let deleted = call(&admin, Method::DELETE, &bob_path, None).await;
    assert_eq!(deleted.status(), 204);

    let admin = stack.admin_token().await;
    let rows = audit_rows(&stack, &admin, "?limit=1000").await;
    let of = |action: &str| -> Vec<&Value> {
        rows.iter().filter(|row| row["action"] == action).collect()
    };
    // The admin's own logins, ada's and bob's (by Stack::user) succeeded.
    let logins = of("login.succeeded");
    assert!(logins.iter().any(|r| r["actor_id"] == ada.id));
    assert!(logins.iter().any(|r| r["actor_name"] == ADMIN_NAME));
    let failed = of("login.failed");
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(failed[0]["actor_id"], ada.id);
    assert_eq!(failed[1]["actor_name"], "nobody");
    assert!(failed[1]["actor_id"].is_null());
    assert_eq!(failed[0]["ip"], "127.0.0.1");
    assert_eq!(of("api_key.created")[0]["target_id"], key_id);
    assert_eq!(of("api_key.created")[0]["detail"]["scopes"], "chat");
    assert_eq!(of("api_key.revoked")[0]["target_id"], key_id);
    assert_eq!(of("password.changed")[0]["actor_id"], ada.id);
    let role = of("user.role_changed");
    assert_eq!(role[0]["target_id"], bob.id);
    assert_eq!(role[0]["actor_id"], admin_id);
    assert_eq!(role[0]["detail"], json!({"from": "user", "to": "admin"}));
    assert_eq!(of("user.disabled")[0]["target_id"], bob.id);
    assert_eq!(of("user.enabled")[0]["target_id"], bob.id);
    assert_eq!(of("password.reset")[0]["target_id"], bob.id);
    let budget = of("budget.changed");
    assert_eq!(budget[0]["target_id"], ada.id);
    assert_eq!(budget[0]["detail"]["tokens"], 1000);
    assert_eq!(budget[0]["detail"]["subject"], "user");
    assert_eq!(of("signing_key.rotated").len(), 1);
    let read = of("admin.all_users_read");
    assert_eq!(read.len(), 1);
    assert_eq!(read[0]["detail"]["path"], "/api/v1/llm-calls");
    assert_eq!(of("user.deleted")[0]["detail"]["username"], "bob");
    // Every row is in time order, with an address.
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted);
    assert!(rows.iter().all(|r| r["ip"] == "127.0.0.1"));

    // Filters: by action, by actor (id or name), by time, page by page.
    assert_eq!(
        audit_rows(&stack, &admin, "?action=user.disabled")
            .await
            .len(),
        1
    );
    let by_ada = audit_rows(&stack, &admin, &format!("?actor={}", ada.id)).await;
    assert!(by_ada.iter().all(|r| r["actor_id"] == ada.id));
    let by_name = audit_rows(&stack, &admin, "?actor=ADA").await;
    assert_eq!(by_ada.len(), by_name.len());
    assert!(
        audit_rows(&stack, &admin, "?to=2000-01-01")
            .await
            .is_empty()
    );
    assert_eq!(
        audit_rows(&stack, &admin, "?from=2000-01-01&limit=1000")
            .await
            .len(),
        rows.len()
    );
    let first = fetch_json(stack.get("/api/v1/admin/audit?limit=3").bearer_auth(&admin)).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let next = audit_rows(&stack, &admin, &format!("?limit=3&cursor={cursor}")).await;
    assert_eq!(next[0]["id"], rows[3]["id"]);

    // Newest first, page by page, is the same rows the other way round.
    let newest = audit_rows(&stack, &admin, "?order=desc&limit=2").await;
    let page = fetch_json(
        stack
            .get("/api/v1/admin/audit?order=desc&limit=2")
            .bearer_auth(&admin),
    )
    .await;
    let after = audit_rows(
        &stack,
        &admin,
        &format!(
            "?order=desc&limit=2&cursor={}",
            page["next_cursor"].as_str().unwrap()
        ),
    )
    .await;
    assert!(newest[0]["id"].as_str() > newest[1]["id"].as_str());
    assert!(after[0]["id"].as_str() < newest[1]["id"].as_str());

    // The export: the same rows as JSON lines.
    let export = send(stack.get("/api/v1/admin/audit/export").bearer_auth(&admin)).await;
    assert_eq!(export.status(), 200);
    assert_eq!(export.headers()["content-type"], "application/x-ndjson");
    let text = export.text().await.unwrap();
    let exported: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The admin's last login (for this read) came after the page above.
    assert_eq!(&exported[..rows.len()], &rows[..]);
    let filtered = send(
        stack
            .get("/api/v1/admin/audit/export?action=login.failed")
            .bearer_auth(&admin),
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(filtered.lines().count(), 2);

    for query in [
        "?from=yesterday",
        "?to=2026-13-01",
        "?action=user.exploded",
        "?cursor=usr-1",
        "?limit=0",
        "?limit=1001",
        "?order=sideways",
        "?sort=desc",
    ] {
        let refused = send(
            stack
                .get(&format!("/api/v1/admin/audit{query}"))
                .bearer_auth(&admin),
        )
        .await;
        assert_eq!(refused.status(), 400, "{query}");
    }
}

#[tokio::test]
async fn no_one_can_change_or_remove_a_row_of_the_trail() {
    let stack = Stack::start_with_admin().await;
    let admin = stack.admin_token().await;
    let before = audit_rows(&stack, &admin, "").await;
    assert!(!before.is_empty());
    for method in [Method::PUT, Method::PATCH, Method::DELETE, Method::POST] {
        let refused = send(
            stack
                .request(method.clone(), "/api/v1/admin/audit")
                .bearer_auth(&admin),
        )
        .await;
        assert!(
            [404, 405].contains(&refused.status().as_u16()),
            "{method}: {}",
            refused.status()
        );
        let refused = send(
            stack
                .request(
                    method.clone(),
                    &format!("/api/v1/admin/audit/{}", before[0]["id"].as_str().unwrap()),
                )
                .bearer_auth(&admin),
        )
        .await;
        assert!([404, 405].contains(&refused.status().as_u16()), "{method}");
    }
    // Not even with the database's own access.
    let update: Result<usize, DbError> = confab_kit::db_run!(stack.gateway_db, |conn| {
        diesel::sql_query("UPDATE audit_events SET action = 'nothing'")
            .execute(conn)
            .await
            .map_err(DbError::from)
    });
    assert!(update.is_err(), "an UPDATE went through");
    let delete: Result<usize, DbError> = confab_kit::db_run!(stack.gateway_db, |conn| {
        diesel::sql_query("DELETE FROM audit_events")
            .execute(conn)
            .await
            .map_err(DbError::from)
    });
    assert!(delete.is_err(), "a DELETE went through");
    let after = audit_rows(&stack, &admin, "").await;
    assert_eq!(&after[..before.len()], &before[..]);
}
