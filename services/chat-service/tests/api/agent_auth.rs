//! chat-service presents a credential on every A2A call (DESIGN §5): the
//! agent's own `key` when its entry has one, else the service token. The
//! real demo agents refuse anything else.

use chat_service::a2a::client::AgentCredential;
use confab_kit::testing::Stack;

use crate::common::{TestApp, start_agents_with, streamed_text};

const MATH_KEY: &str = "math-inbound-key-for-tests";

#[tokio::test]
async fn each_agent_is_called_with_its_key_or_else_the_service_token() {
    let mut stack = Stack::new();
    // The agents share a service token chat-service does not have; math
    // also accepts its own inbound key.
    let agents = start_agents_with(0, 0, &mut stack, |settings| {
        settings.auth.service_token = "a-token-chat-service-does-not-know".into();
        settings.agents.get_mut("math").unwrap().inbound_key = Some(MATH_KEY.into());
    })
    .await;
    let chat = TestApp::start(&agents, &mut stack, |settings| {
        settings.agents.get_mut("math").unwrap().key = Some(AgentCredential::new(MATH_KEY));
    })
    .await;

    let math = chat.conversation("usr-ada", "math").await;
    let events = chat.turn("usr-ada", &math, "What is 6 * 7?").await;
    assert_eq!(events.last().unwrap()["status"], "complete", "{events:?}");
    assert_eq!(streamed_text(&events), "The answer is 42.");

    // text has no key of its own here: chat-service sends its service
    // token, which these agents refuse. The turn fails at once (a refused
    // credential is not worth a retry) and says why.
    let text = chat.conversation("usr-ada", "text").await;
    let events = chat.turn("usr-ada", &text, "Uppercase: hello").await;
    assert!(
        !events.iter().any(|e| e["type"] == "retry"),
        "no retry: {events:?}"
    );
    let error = events.iter().find(|e| e["type"] == "error").unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("refused chat-service's credential"),
        "{error}"
    );
    assert_eq!(events.last().unwrap()["status"], "failed", "{events:?}");
    let messages = chat.messages("usr-ada", &text).await;
    assert_eq!(messages[1]["status"], "failed");
}
