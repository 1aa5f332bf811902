//! chat-service as tests start it, in front of the real demo agents (which
//! think through a real llm-proxy-service with its builtin model), and a
//! client with one method per endpoint, calling as the gateway does
//! (service token and `X-User-Id`).

pub mod process;
pub mod ws;

use std::collections::BTreeMap;

use confab_kit::settings::ServiceSettings;
use confab_kit::testing::Stack;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use llm_proxy_service::testing::slow_builtin;
use serde_json::{Value, json};

pub const SERVICE_TOKEN: &str = "confab-dev-service-token";

/// llm-proxy-service and every demo agent on free ports; the agents' A2A
/// URLs by name. `chunk_delay_ms` slows the builtin model down.
pub async fn start_agents(chunk_delay_ms: u64, stack: &mut Stack) -> BTreeMap<String, String> {
    start_agents_with(0, chunk_delay_ms, stack, |_| {}).await
}

/// [`start_agents`] with a builtin model that also waits
/// `first_chunk_delay_ms` before each answer, so turns stay in flight.
pub async fn start_slow_agents(
    first_chunk_delay_ms: u64,
    chunk_delay_ms: u64,
    stack: &mut Stack,
) -> BTreeMap<String, String> {
    start_agents_with(first_chunk_delay_ms, chunk_delay_ms, stack, |_| {}).await
}

/// [`start_slow_agents`], with the agents' settings adjusted by `tweak`
/// (their default service token is chat-service's: both are the
/// development one).
pub async fn start_agents_with(
    first_chunk_delay_ms: u64,
    chunk_delay_ms: u64,
    stack: &mut Stack,
    tweak: impl FnOnce(&mut demo_agents::Settings),
) -> BTreeMap<String, String> {
    let llm = llm_proxy_service::testing::start(stack, |settings| {
        slow_builtin(settings, first_chunk_delay_ms, chunk_delay_ms);
    })
    .await
    .unwrap();
    demo_agents::testing::start(&llm.url, tweak).await.unwrap()
}

/// chat-service on a fresh database in front of the demo agents (their
/// model slowed by `chunk_delay_ms`), called over HTTP/2 as the default
/// configuration calls them, its settings adjusted by `tweak`; the stack
/// keeps it all running.
pub async fn start_chat(
    chunk_delay_ms: u64,
    tweak: impl FnOnce(&mut chat_service::Settings),
) -> (Stack, TestApp) {
    let mut stack = Stack::new();
    let agents = start_agents(chunk_delay_ms, &mut stack).await;
    let chat = TestApp::start(&agents, &mut stack, |settings| {
        for agent in settings.agents.values_mut() {
            agent.http2 = true;
        }
        tweak(settings);
    })
    .await;
    (stack, chat)
}

/// chat-service in front of the demo agents, as [`start_chat`], with the
/// llm-proxy-service they think through, which also keeps the LLM budgets
/// chat-service asks before every turn (`[budget]` on, at its URL).
pub async fn start_chat_with_budgets(
    tweak: impl FnOnce(&mut chat_service::Settings),
) -> (Stack, TestApp, llm_proxy_service::testing::Started) {
    let mut stack = Stack::new();
    let llm = llm_proxy_service::testing::start(&mut stack, |_| {})
        .await
        .unwrap();
    let agents = demo_agents::testing::start(&llm.url, |_| {}).await.unwrap();
    let chat = TestApp::start(&agents, &mut stack, |settings| {
        settings.budget.enabled = true;
        settings.budget.url.clone_from(&llm.url);
        tweak(settings);
    })
    .await;
    (stack, chat, llm)
}

/// The LLM calls llm-proxy-service recorded for `user`, newest first, once
/// there are `expected` (the recorder writes a moment after each call).
pub async fn llm_calls_of(
    llm: &llm_proxy_service::testing::Started,
    user: &str,
    expected: usize,
) -> Vec<llm_proxy_service::store::llm_calls::LlmCall> {
    llm_proxy_service::testing::recorded_calls(&llm.db, user, expected).await
}

/// chat-service on a fresh database whose agents `ids` all point at a port
/// nothing listens on, so every turn fails; the stack keeps it running.
pub async fn start_chat_with_dead_agents(ids: &[&str]) -> (Stack, TestApp) {
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{dead_port}/");
    let agents = ids
        .iter()
        .map(|id| ((*id).to_owned(), url.clone()))
        .collect();
    let mut stack = Stack::new();
    let chat = TestApp::start(&agents, &mut stack, |_| {}).await;
    (stack, chat)
}

pub struct TestApp {
    pub url: String,
    pub http: reqwest::Client,
    /// chat-service's own database, for tests that check what is stored.
    pub db: confab_kit::db::Db,
    /// What it was started with, for another instance of it.
    settings: chat_service::Settings,
}

impl TestApp {
    /// chat-service on a fresh database, its agents at `agents` (id → URL),
    /// its settings adjusted by `tweak`.
    pub async fn start(
        agents: &BTreeMap<String, String>,
        stack: &mut Stack,
        tweak: impl FnOnce(&mut chat_service::Settings),
    ) -> Self {
        let mut settings = chat_service::Settings::defaults().unwrap();
        settings.server.port = 0;
        settings.database = stack.database("chat").await.unwrap();
        settings.bus = stack.bus();
        settings.agents = agents
            .iter()
            .map(|(id, url)| {
                let entry = serde_json::from_value(json!({"url": url})).unwrap();
                (id.clone(), entry)
            })
            .collect();
        settings.a2a.retry_base_ms = 10;
        // No budget checks unless a test turns them on with the URL of its
        // llm-proxy-service (`budget_checked_by`).
        settings.budget.enabled = false;
        tweak(&mut settings);
        Self::run(settings, stack).await
    }

    /// Another instance of this chat-service: its database, its bus and
    /// its agents, on a port of its own.
    pub async fn another(&self, stack: &mut Stack) -> Self {
        Self::run(self.settings.clone(), stack).await
    }

    async fn run(settings: chat_service::Settings, stack: &mut Stack) -> Self {
        let app = chat_service::build(settings.clone()).await.unwrap();
        let db = app.db().cloned().unwrap();
        let url = stack.spawn(app);
        Self {
            url,
            http: reqwest::Client::new(),
            db,
            settings,
        }
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        user: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .header("x-service-token", SERVICE_TOKEN)
            .header("x-user-id", user)
    }

    /// `POST /chat/conversations` with `body`.
    pub async fn create(&self, user: &str, body: Value) -> reqwest::Response {
        self.request(reqwest::Method::POST, "/chat/conversations", user)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// `GET /chat/conversations?{query}`.
    pub async fn list(&self, user: &str, query: &str) -> reqwest::Response {
        self.request(
            reqwest::Method::GET,
            &format!("/chat/conversations?{query}"),
            user,
        )
        .send()
        .await
        .unwrap()
    }

    /// `GET /chat/conversations/{id}`.
    pub async fn get(&self, user: &str, conversation: &str) -> reqwest::Response {
        self.request(
            reqwest::Method::GET,
            &format!("/chat/conversations/{conversation}"),
            user,
        )
        .send()
        .await
        .unwrap()
    }

    /// `GET /chat/conversations/{id}`, its body.
    pub async fn read(&self, user: &str, conversation: &str) -> Value {
        self.get(user, conversation).await.json().await.unwrap()
    }

    /// `PATCH /chat/conversations/{id}` with `body`.
    pub async fn patch(&self, user: &str, conversation: &str, body: Value) -> reqwest::Response {
        self.request(
            reqwest::Method::PATCH,
            &format!("/chat/conversations/{conversation}"),
            user,
        )
        .json(&body)
        .send()
        .await
        .unwrap()
    }

    /// `DELETE /chat/conversations/{id}`.
    pub async fn delete(&self, user: &str, conversation: &str) -> reqwest::Response {
        self.request(
            reqwest::Method::DELETE,
            &format!("/chat/conversations/{conversation}"),
            user,
        )
        .send()
        .await
        .unwrap()
    }

    /// `GET /chat/conversations/{id}/history`.
    pub async fn history(&self, user: &str, conversation: &str) -> reqwest::Response {
        self.request(
            reqwest::Method::GET,
            &format!("/chat/conversations/{conversation}/history"),
            user,
        )
        .send()
        .await
        .unwrap()
    }

    /// A new conversation of `user` with `agent`; its id.
    pub async fn conversation(&self, user: &str, agent: &str) -> String {
        let created: Value = self
            .create(user, json!({"agent_id": agent}))
            .await
            .json()
            .await
            .unwrap();
        created["id"].as_str().unwrap().to_owned()
    }

    /// `GET …/messages?{query}`.
    pub async fn page(&self, user: &str, conversation: &str, query: &str) -> reqwest::Response {
        self.request(
            reqwest::Method::GET,
            &format!("/chat/conversations/{conversation}/messages?{query}"),
            user,
        )
        .send()
        .await
        .unwrap()
    }

    /// `GET …/messages?{query}`, its body.
    pub async fn messages_page(&self, user: &str, conversation: &str, query: &str) -> Value {
        self.page(user, conversation, query)
            .await
            .json()
            .await
            .unwrap()
    }

    /// `POST …/{endpoint}` with `message`: a turn started over HTTP.
    async fn post_turn(
        &self,
        user: &str,
        conversation: &str,
        endpoint: &str,
        message: &str,
    ) -> reqwest::Response {
        self.request(
            reqwest::Method::POST,
            &format!("/chat/conversations/{conversation}/{endpoint}"),
            user,
        )
        .json(&json!({"message": message}))
        .send()
        .await
        .unwrap()
    }

    /// Starts a turn; the response streams its events.
    pub async fn stream(&self, user: &str, conversation: &str, message: &str) -> reqwest::Response {
        self.post_turn(user, conversation, "messages/stream", message)
            .await
    }

    /// `POST …/messages`: a turn answered once it has ended.
    pub async fn post_message(
        &self,
        user: &str,
        conversation: &str,
        message: &str,
    ) -> reqwest::Response {
        self.post_turn(user, conversation, "messages", message)
            .await
    }

    /// A whole turn: its events.
    pub async fn turn(&self, user: &str, conversation: &str, message: &str) -> Vec<Value> {
        let response = self.stream(user, conversation, message).await;
        assert_eq!(response.status(), 200, "the turn started");
        events(response).await
    }

    pub async fn cancel(&self, user: &str, conversation: &str) -> reqwest::Response {
        self.request(
            reqwest::Method::POST,
            &format!("/chat/conversations/{conversation}/cancel"),
            user,
        )
        .send()
        .await
        .unwrap()
    }

    /// The conversation's messages, oldest first.
    pub async fn messages(&self, user: &str, conversation: &str) -> Vec<Value> {
        let page = self.messages_page(user, conversation, "").await;
        page["items"].as_array().unwrap().clone()
    }
}

impl TestApp {
    /// `POST /chat/unified` with `body`, answered in `format`
    /// (`X-Response-Format`) when given.
    pub async fn unified(
        &self,
        user: &str,
        body: Value,
        format: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.request(reqwest::Method::POST, "/chat/unified", user);
        if let Some(format) = format {
            request = request.header("x-response-format", format);
        }
        request.json(&body).send().await.unwrap()
    }

    /// `POST /chat/completions` with `body`, in `conversation`
    /// (`X-Conversation-Id`) when given.
    pub async fn completions(
        &self,
        user: &str,
        body: Value,
        conversation: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.request(reqwest::Method::POST, "/chat/completions", user);
        if let Some(conversation) = conversation {
            request = request.header("x-conversation-id", conversation);
        }
        request.json(&body).send().await.unwrap()
    }

    /// `POST {path}` with `body` as it is, declared JSON (malformed, say).
    pub async fn post_raw(&self, path: &str, user: &str, body: &str) -> reqwest::Response {
        self.request(reqwest::Method::POST, path, user)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    /// How many conversations `user` has.
    pub async fn conversation_count(&self, user: &str) -> usize {
        let list: Value = self.list(user, "").await.json().await.unwrap();
        list["items"].as_array().unwrap().len()
    }

    /// `GET /openapi.json`, without credentials (the document is public).
    pub async fn openapi(&self) -> reqwest::Response {
        self.http
            .get(format!("{}/openapi.json", self.url))
            .send()
            .await
            .unwrap()
    }

    /// `GET /chat/models`.
    pub async fn models(&self, user: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, "/chat/models", user)
            .send()
            .await
            .unwrap()
    }
}

/// The `data:` payloads of an SSE stream as sent, to its end (for OpenAI
/// chunks, whose last one is `[DONE]`).
/// The events of an SSE response, each with its id.
pub async fn numbered(response: reqwest::Response) -> Vec<(u64, Value)> {
    response
        .bytes_stream()
        .eventsource()
        .map(|e| {
            let e = e.unwrap();
            (
                e.id.parse().unwrap(),
                serde_json::from_str(&e.data).unwrap(),
            )
        })
        .collect()
        .await
}

pub async fn data_lines(response: reqwest::Response) -> Vec<String> {
    response
        .bytes_stream()
        .eventsource()
        .map(|event| event.unwrap().data)
        .collect()
        .await
}

/// The chunks of a streamed OpenAI completion, after checking that it ends
/// with `[DONE]`.
pub async fn openai_chunks(response: reqwest::Response) -> Vec<Value> {
    let mut data = data_lines(response).await;
    assert_eq!(data.pop().as_deref(), Some("[DONE]"), "ends with [DONE]");
    data.iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// The text the `delta`s of OpenAI chunks carry.
pub fn delta_text(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// Every event of a turn's SSE stream, to its end.
pub async fn events(response: reqwest::Response) -> Vec<Value> {
    response
        .bytes_stream()
        .eventsource()
        .map(|event| serde_json::from_str::<Value>(&event.unwrap().data).unwrap())
        .collect()
        .await
}

/// The ids of a list page's items, in order.
pub fn item_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A turn's SSE events as the client reads them: (SSE id, event).
pub fn sse_events(
    response: reqwest::Response,
) -> futures_util::stream::BoxStream<'static, (u64, Value)> {
    response
        .bytes_stream()
        .eventsource()
        .map(|event| {
            let event = event.unwrap();
            let id = event.id.parse::<u64>().unwrap();
            (id, serde_json::from_str::<Value>(&event.data).unwrap())
        })
        .boxed()
}

/// Reads `events` up to and with the turn's first `text`.
pub async fn until_first_text(
    events: &mut futures_util::stream::BoxStream<'static, (u64, Value)>,
) -> Vec<(u64, Value)> {
    let mut read = Vec::new();
    while let Some((id, event)) = events.next().await {
        let is_text = event["type"] == "text";
        read.push((id, event));
        if is_text {
            return read;
        }
    }
    panic!("the turn sent no text: {read:?}");
}

/// The events of (SSE id, event) pairs.
pub fn without_ids(events: Vec<(u64, Value)>) -> Vec<Value> {
    events.into_iter().map(|(_, event)| event).collect()
}

/// The text a turn streamed.
pub fn streamed_text(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "text")
        .map(|e| e["text"].as_str().unwrap())
        .collect()
}
