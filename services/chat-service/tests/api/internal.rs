//! `DELETE /internal/users/{id}`: what the gateway calls when an admin
//! deletes a user. Service token only; every conversation of the user
//! goes, with its messages, and nobody else's; their turn in flight is
//! canceled; calling it again is as good as the first time.

use chat_service::store::schema::messages;
use confab_kit::db_run;
use confab_kit::testing::Stack;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::common::{
    SERVICE_TOKEN, TestApp, sse_events, start_agents, start_slow_agents, until_first_text,
};

const QUESTION: &str = "What is 6 * 7?";

impl TestApp {
    /// `DELETE /internal/users/{user}` with these headers.
    async fn delete_user(&self, user: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .http
            .delete(format!("{}/internal/users/{user}", self.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    /// How many message rows of `user` are stored, listed or not.
    async fn stored_messages(&self, user: &str) -> i64 {
        let user = user.to_owned();
        db_run!(&self.db, |conn| {
            messages::table
                .filter(messages::user_id.eq(&user))
                .count()
                .get_result::<i64>(conn)
                .await
                .map_err(confab_kit::db::DbError::from)
        })
        .unwrap()
    }
}

#[tokio::test]
async fn deleting_a_user_takes_the_service_token_and_removes_only_their_data() {
    let mut stack = Stack::new();
    let agents = start_agents(0, &mut stack).await;
    let chat = TestApp::start(&agents, &mut stack, |_| {}).await;
    for user in ["usr-ada", "usr-ada", "usr-bob"] {
        let conversation = chat.conversation(user, "math").await;
        let events = chat.turn(user, &conversation, QUESTION).await;
        assert_eq!(events.last().unwrap()["status"], "complete");
    }
    assert_eq!(chat.stored_messages("usr-ada").await, 4);

    // No token, a user's token, a wrong service token, identity headers
    // without the token: all refused, nothing deleted.
    for headers in [
        vec![],
        vec![("authorization", "Bearer not-a-service-token")],
        vec![("x-service-token", "not-the-token")],
        vec![("x-user-id", "usr-ada"), ("x-user-role", "admin")],
    ] {
        let refused = chat.delete_user("usr-ada", &headers).await;
        assert_eq!(refused.status(), 401, "{headers:?}");
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    assert_eq!(chat.conversation_count("usr-ada").await, 2);

    let service = [("x-service-token", SERVICE_TOKEN)];
    let deleted = chat.delete_user("usr-ada", &service).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(chat.conversation_count("usr-ada").await, 0);
    assert_eq!(chat.stored_messages("usr-ada").await, 0);
    // Bob keeps everything.
    assert_eq!(chat.conversation_count("usr-bob").await, 1);
    assert_eq!(chat.stored_messages("usr-bob").await, 2);

    // Again, and for a user chat-service never saw: the same answer.
    assert_eq!(chat.delete_user("usr-ada", &service).await.status(), 204);
    assert_eq!(chat.delete_user("usr-nobody", &service).await.status(), 204);
    assert_eq!(chat.conversation_count("usr-bob").await, 1);
}

#[tokio::test]
async fn deleting_a_user_cancels_their_turn_in_flight() {
    let mut stack = Stack::new();
    // Slow enough that the turn is still streaming when the user goes.
    let agents = start_slow_agents(0, 300, &mut stack).await;
    let chat = TestApp::start(&agents, &mut stack, |_| {}).await;
    let conversation = chat.conversation("usr-ada", "math").await;
    let mut events = sse_events(chat.stream("usr-ada", &conversation, QUESTION).await);
    until_first_text(&mut events).await;

    let service = [("x-service-token", SERVICE_TOKEN)];
    assert_eq!(chat.delete_user("usr-ada", &service).await.status(), 204);
    let rest: Vec<_> = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut rest = Vec::new();
        while let Some((_, event)) = futures_util::StreamExt::next(&mut events).await {
            rest.push(event);
        }
        rest
    })
    .await
    .expect("the turn ends soon after its user is deleted");
    let done = rest.last().unwrap();
    assert_eq!(done["type"], "done", "{rest:?}");
    assert_eq!(done["status"], "canceled", "{rest:?}");
    assert_eq!(
        chat.stored_messages("usr-ada").await,
        0,
        "its reply had nowhere to go"
    );
}
