//! The conversations REST API: list, read, rename, delete and history, each
//! scoped to its owner. Agents point at a port nothing listens on: turns here
//! only need to leave messages behind, which a failed turn does too.

use std::collections::HashSet;

use chat_service::store::schema::messages;
use confab_kit::db::{Db, DbError};
use confab_kit::db_run;
use diesel::prelude::*;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};

use crate::common::{item_ids, start_chat_with_dead_agents};

/// The body of a response that must have `status`.
async fn json_with(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(actual, status, "{body}");
    body
}

/// Messages stored for the conversation, whoever owns them: read straight
/// from the database, not through the API.
async fn stored_messages(db: &Db, conversation: &str) -> i64 {
    let count: Result<i64, DbError> = db_run!(db, |conn| {
        messages::table
            .filter(messages::conversation_id.eq(conversation))
            .count()
            .get_result(conn)
            .await
            .map_err(DbError::from)
    });
    count.unwrap()
}

#[tokio::test]
async fn conversations_are_listed_newest_first_and_a_new_message_moves_one_to_the_top() {
    let (_stack, app) = start_chat_with_dead_agents(&["math", "text"]).await;
    let first = app.conversation("usr-ada", "math").await;
    let second = app.conversation("usr-ada", "math").await;
    let third = app.conversation("usr-ada", "math").await;
    let page = json_with(app.list("usr-ada", "").await, 200).await;
    assert_eq!(
        item_ids(&page),
        [third.as_str(), second.as_str(), first.as_str()]
    );
    assert_eq!(page["next_cursor"], Value::Null);
    let item = &page["items"][0];
    assert_eq!(item["agent_id"], "math");
    assert_eq!(item["message_count"], 0);
    assert!(
        item.get("tree").is_none(),
        "a list leaves trees out: {item}"
    );

    app.turn("usr-ada", &first, "still there?").await;
    let page = json_with(app.list("usr-ada", "").await, 200).await;
    assert_eq!(
        item_ids(&page),
        [first.as_str(), third.as_str(), second.as_str()]
    );
    assert_eq!(page["items"][0]["message_count"], 2);
}

#[tokio::test]
async fn forty_five_conversations_page_as_twenty_twenty_and_five() {
    let (_stack, app) = start_chat_with_dead_agents(&["math", "text"]).await;
    let mut created = Vec::new();
    for _ in 0..45 {
        created.push(app.conversation("usr-ada", "math").await);
    }
    app.conversation("usr-mallory", "math").await;

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut query = "limit=20".to_owned();
    loop {
        let page = json_with(app.list("usr-ada", &query).await, 200).await;
        sizes.push(page["items"].as_array().unwrap().len());
        seen.extend(item_ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit=20&cursor={cursor}"),
            None => break,
        }
        assert!(sizes.len() < 5, "paging never ends");
    }
    assert_eq!(sizes, [20, 20, 5]);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        45,
        "no duplicates"
    );
    created.reverse();
    assert_eq!(seen, created, "newest first across pages");

    let default = json_with(app.list("usr-ada", "").await, 200).await;
    assert_eq!(item_ids(&default), created[..20]);
    assert!(default["next_cursor"].is_string());
    let everything = json_with(app.list("usr-ada", "limit=100").await, 200).await;
    assert_eq!(item_ids(&everything), created);
    assert_eq!(everything["next_cursor"], Value::Null);
}

#[tokio::test]
async fn conversations_updated_at_the_same_instant_page_by_id() {
    let (_stack, app) = start_chat_with_dead_agents(&["math", "text"]).await;
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(app.conversation("usr-ada", "math").await);
    }
    let same: Result<(), DbError> = db_run!(app.db, |conn| {
        conn.batch_execute("UPDATE conversations SET updated_at = '2026-11-23 12:00:00'")
            .await
            .map_err(DbError::from)
    });
    same.unwrap();

    let mut seen = Vec::new();
    let mut query = "limit=2".to_owned();
    loop {
        let page = json_with(app.list("usr-ada", &query).await, 200).await;
        seen.extend(item_ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit=2&cursor={cursor}"),
            None => break,
        }
        assert!(seen.len() <= 5, "paging never ends");
    }
    created.sort();
    created.reverse();
    assert_eq!(seen, created, "id descending among equal times");
}

#[tokio::test]
async fn conversations_are_filtered_by_agent() {
    let (_stack, app) = start_chat_with_dead_agents(&["math", "text"]).await;
    let math = app.conversation("usr-ada", "math").await;
    let text = app.conversation("usr-ada", "text").await;
    let math_too = app.conversation("usr-ada", "math").await;

    let page = json_with(app.list("usr-ada", "agent_id=math").await, 200).await;
    assert_eq!(item_ids(&page), [math_too.as_str(), math.as_str()]);
    let page = json_with(app.list("usr-ada", "agent_id=text").await, 200).await;
    assert_eq!(item_ids(&page), [text.as_str()]);
    let page = json_with(app.list("usr-ada", "agent_id=nobody").await, 200).await;
    assert!(item_ids(&page).is_empty());
    let page = json_with(app.list("usr-ada", "agent_id=").await, 200).await;
    assert_eq!(item_ids(&page).len(), 3, "an empty filter is no filter");

    let first = json_with(app.list("usr-ada", "agent_id=math&limit=1").await, 200).await;
    assert_eq!(item_ids(&first), [math_too.as_str()]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let next = json_with(
        app.list("usr-ada", &format!("agent_id=math&limit=1&cursor={cursor}"))
            .await,
        200,
    )
    .await;
    assert_eq!(item_ids(&next), [math.as_str()]);
    assert_eq!(next["next_cursor"], Value::Null);
}

#[tokio::test]
async fn bad_limits_and_cursors_are_refused_with_422() {
    let (_stack, app) = start_chat_with_dead_agents(&["math", "text"]).await;
    app.conversation("usr-ada", "math").await;
    app.conversation("usr-ada", "math").await;
    for bad in ["limit=0", "limit=-1", "limit=101"] {
        let body = json_with(app.list("usr-ada", bad).await, 422).await;
        assert_eq!(body["error"]["code"], "invalid_limit", "{bad}");
    }
    // Not a number at all: the query cannot be read, as every other limit.
    for bad in ["limit=", "limit=ten", "limit=2.5"] {
        let body = json_with(app.list("usr-ada", bad).await, 400).await;
        assert_eq!(body["error"]["code"], "bad_query", "{bad}");
    }
    let page = json_with(app.list("usr-ada", "limit=1").await, 200).await;
    let real = page["next_cursor"].as_str().unwrap();
    // Empty; not of the form; a real cursor cut inside its time.
    for bad in [
        "cursor=".to_owned(),
        "cursor=%%%".to_owned(),
        "cursor=K%C3%9C".to_owned(),
        "cursor=bm90IGEgY3Vyc29y".to_owned(),
        format!("cursor={}", &real[..real.find('.').unwrap()]),
    ] {
        let body = json_with(app.list("usr-ada", &bad).await, 422).await;
        assert_eq!(body["error"]["code"], "invalid_cursor", "{bad}");
    }
}

#[tokio::test]
async fn a_well_formed_cursor_is_a_position_whether_or_not_a_conversation_is_there() {
    let (_stack, app) = start_chat_with_dead_agents(&["math", "text"]).await;
    let older = app.conversation("usr-ada", "math").await;
    let newer = app.conversation("usr-ada", "math").await;
    // Far in the future: everything comes after it.
    let page = json_with(
        app.list("usr-ada", "cursor=9999999999999999999.conv-zzz")
            .await,
        200,
    )
    .await;
    assert_eq!(item_ids(&page), [newer.as_str(), older.as_str()]);
    // Before 1970: nothing does.
    let page = json_with(app.list("usr-ada", "cursor=0.x").await, 200).await;
    assert!(item_ids(&page).is_empty());
}

#[tokio::test]
async fn a_conversation_read_alone_comes_with_its_tree() {
    let (_stack, app) = start_chat_with_dead_agents(&["math", "text"]).await;
    let created = json_with(
        app.create("usr-ada", json!({"title": "Sums", "agent_id": "math"}))
            .await,
        201,
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let read = json_with(app.get("usr-ada", id).await, 200).await;
    assert_eq!(read, created);
    assert_eq!(read["title"], "Sums");
    assert_eq!(read["tree"], json!({}));
    assert_eq!(read["tree_version"], 0);
    for field in ["created_at", "updated_at"] {
        assert!(read[field].as_str().unwrap().ends_with('Z'), "{field}");
    }
}

#[tokio::test]
async fn a_renamed_conversation_answers_its_new_title_and_moves_to_the_top() {
    let (_stack, app) = start_chat_with_dead_agents(&["math", "text"]).await;
    let renamed = app.conversation("usr-ada", "math").await;
    let other = app.conversation("usr-ada", "math").await;
    let before = json_with(app.get("usr-ada", &renamed).await, 200).await;

    let title = "é".repeat(200);
    let after = json_with(
        app.patch(
            "usr-ada",
            &renamed,
            json!({"title": format!("  {title}  ")}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        after["title"],
        title.as_str(),
        "trimmed, 200 characters kept"
    );
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["created_at"], before["created_at"]);
    assert_eq!(after["tree"], json!({}));
    assert!(after["updated_at"].as_str() >= before["updated_at"].as_str());
    assert_eq!(
        json_with(app.get("usr-ada", &renamed).await, 200).await,
        after
    );

    let page = json_with(app.list("usr-ada", "").await, 200).await;
    assert_eq!(item_ids(&page), [renamed.as_str(), other.as_str()]);
}

#[tokio::test]
async fn bad_titles_are_refused_and_change_nothing() {
    let (_stack, app) = start_chat_with_dead_agents(&["math", "text"]).await;
    let id = app.conversation("usr-ada", "math").await;
    let before = json_with(app.get("usr-ada", &id).await, 200).await;
    let refused = [
        (json!({"title": ""}), 422, "empty_title"),
        (json!({"title": " \n\t "}), 422, "empty_title"),
        (json!({"title": "t".repeat(201)}), 422, "title_too_long"),
        (json!({}), 422, "invalid_body"),
        (json!({"title": null}), 422, "invalid_body"),
        (json!({"title": 5}), 422, "invalid_body"),
        (json!(["Sums"]), 422, "invalid_body"),
        // Nothing is half applied: a field that cannot change refuses all.
        (
            json!({"title": "Sums", "agent_id": "text"}),
            422,
            "invalid_body",
        ),
    ];
    for (body, status, code) in refused {
        let answer = json_with(app.patch("usr-ada", &id, body.clone()).await, status).await;
        assert_eq!(answer["error"]["code"], code, "{body}");
    }
    let response = app
        .request(
            reqwest::Method::PATCH,
            &format!("/chat/conversations/{id}"),
            "usr-ada",
        )
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    let answer = json_with(response, 400).await;
    assert_eq!(answer["error"]["code"], "malformed_json");

    assert_eq!(json_with(app.get("usr-ada", &id).await, 200).await, before);
}

#[tokio::test]
async fn creating_with_a_bad_title_follows_the_same_rules() {
    let (_stack, app) = start_chat_with_dead_agents(&["math", "text"]).await;
    let body = json_with(
        app.create("usr-ada", json!({"title": "é".repeat(201)}))
            .await,
        422,
    )
    .await;
    assert_eq!(body["error"]["code"], "title_too_long");
    let blank = json_with(app.create("usr-ada", json!({"title": "   "})).await, 201).await;
    assert_eq!(blank["title"], "New conversation");
    let page = json_with(app.list("usr-ada", "").await, 200).await;
    assert_eq!(item_ids(&page).len(), 1, "the refused one was not created");
}

#[tokio::test]
async fn deleting_a_conversation_deletes_its_messages() {
    let (_stack, app) = start_chat_with_dead_agents(&["math", "text"]).await;
    let doomed = app.conversation("usr-ada", "math").await;
    let kept = app.conversation("usr-ada", "math").await;
    app.turn("usr-ada", &doomed, "one").await;
    app.turn("usr-ada", &doomed, "two").await;
    app.turn("usr-ada", &kept, "three").await;
    assert_eq!(stored_messages(&app.db, &doomed).await, 4);

    let response = app.delete("usr-ada", &doomed).await;
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());

    assert_eq!(stored_messages(&app.db, &doomed).await, 0, "cascaded");
    assert_eq!(stored_messages(&app.db, &kept).await, 2);
    json_with(app.get("usr-ada", &doomed).await, 404).await;
    json_with(app.page("usr-ada", &doomed, "").await, 404).await;
    json_with(app.history("usr-ada", &doomed).await, 404).await;
    json_with(app.delete("usr-ada", &doomed).await, 404).await;
    let page = json_with(app.list("usr-ada", "").await, 200).await;
    assert_eq!(item_ids(&page), [kept.as_str()]);
}

#[tokio::test]
async fn history_holds_the_conversation_and_its_messages_oldest_first() {
    let (_stack, app) = start_chat_with_dead_agents(&["math", "text"]).await;
    let id = app.conversation("usr-ada", "math").await;
    let empty = json_with(app.history("usr-ada", &id).await, 200).await;
    assert_eq!(empty["messages"], json!([]));
    assert_eq!(empty["next_cursor"], Value::Null);

    app.turn("usr-ada", &id, "one").await;
    app.turn("usr-ada", &id, "two").await;
    let history = json_with(app.history("usr-ada", &id).await, 200).await;
    let conversation = json_with(app.get("usr-ada", &id).await, 200).await;
    assert_eq!(history["conversation"], conversation, "with its tree");
    assert_eq!(history["conversation"]["message_count"], 4);
    let messages = history["messages"].as_array().unwrap();
    let seqs: Vec<i64> = messages
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(messages[0]["content"], "one");
    assert_eq!(messages[2]["content"], "two");
    assert_eq!(history["next_cursor"], Value::Null);
    assert_eq!(
        history["messages"],
        json!(app.messages("usr-ada", &id).await)
    );
}

#[tokio::test]
async fn history_is_capped_at_the_newest_thousand_messages() {
    let (_stack, app) = start_chat_with_dead_agents(&["math", "text"]).await;
    let id = app.conversation("usr-ada", "math").await;
    // 1,005 messages written straight to the database, which is faster than
    // 500 turns. Only columns of the first migration, so later ones (with
    // defaults) do not matter; one SQL text for both backends.
    let bulk = format!(
        "INSERT INTO messages \
           (id, conversation_id, user_id, seq, role, content, content_blocks, status, created_at) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1005) \
         SELECT 'msg-bulk-' || i, '{id}', 'usr-ada', i, 'user', 'message ' || i, '[]', \
           'complete', CURRENT_TIMESTAMP FROM n; \
         UPDATE conversations SET message_count = 1005 WHERE id = '{id}';"
    );
    let written: Result<(), DbError> = db_run!(app.db, |conn| {
        conn.batch_execute(&bulk).await.map_err(DbError::from)
    });
    written.unwrap();

    let history = json_with(app.history("usr-ada", &id).await, 200).await;
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1000);
    assert_eq!(messages[0]["seq"], 6);
    assert_eq!(messages[999]["seq"], 1005);
    assert_eq!(messages[999]["content"], "message 1005");
    assert_eq!(history["conversation"]["message_count"], 1005);
    assert_eq!(history["next_cursor"], "6");
    let older = json_with(app.page("usr-ada", &id, "before_seq=6").await, 200).await;
    let seqs: Vec<i64> = older["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn another_users_conversation_is_not_found_on_every_endpoint() {
    let (_stack, app) = start_chat_with_dead_agents(&["math", "text"]).await;
    let id = app.conversation("usr-ada", "math").await;
    app.turn("usr-ada", &id, "mine").await;
    let before = json_with(app.history("usr-ada", &id).await, 200).await;

    for conversation in [id.as_str(), "conv-does-not-exist"] {
        for response in [
            app.get("usr-mallory", conversation).await,
            app.patch("usr-mallory", conversation, json!({"title": "mine now"}))
                .await,
            app.history("usr-mallory", conversation).await,
            app.delete("usr-mallory", conversation).await,
        ] {
            let body = json_with(response, 404).await;
            assert_eq!(body["error"]["code"], "not_found", "{conversation}");
        }
    }
    let page = json_with(app.list("usr-mallory", "").await, 200).await;
    assert!(item_ids(&page).is_empty());
    let page = json_with(app.list("usr-mallory", "agent_id=math").await, 200).await;
    assert!(item_ids(&page).is_empty());

    assert_eq!(
        json_with(app.history("usr-ada", &id).await, 200).await,
        before,
        "untouched"
    );
    assert_eq!(stored_messages(&app.db, &id).await, 2);
}
