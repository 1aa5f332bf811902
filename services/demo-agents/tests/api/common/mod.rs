//! The demo agents as tests start them: every agent on its own port, all
//! thinking through a real llm-proxy-service (builtin model, fresh
//! database), and one JSON-RPC client to call them with, which presents
//! the service token as chat-service does.

use std::collections::BTreeMap;

use confab_kit::testing::{Stack, get_as_service};
use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt};
use llm_proxy_service::testing::slow_builtin;
use serde_json::{Value, json};

/// The `A2A-Version` header of a call; `None` sends none (which means 0.3).
pub const V1: Option<&str> = Some("1.0");
pub const V03: Option<&str> = None;

pub struct Agents {
    urls: BTreeMap<String, String>,
    pub http: reqwest::Client,
    /// The service token the agents accept, which `post` presents.
    pub service_token: String,
    /// The llm-proxy-service the agents think through.
    llm_url: String,
    /// Its database, for what it recorded of each call.
    llm_db: confab_kit::db::Db,
    /// The services' databases, kept for the life of the test.
    _stack: Stack,
}

impl Agents {
    /// `chunk_delay_ms` slows the builtin model down, to leave time to
    /// cancel or drop a stream mid-way.
    pub async fn start(chunk_delay_ms: u64) -> Self {
        Self::start_with(chunk_delay_ms, |_| {}).await
    }

    /// As `start`, with the agents' settings adjusted by `tweak`.
    pub async fn start_with(
        chunk_delay_ms: u64,
        tweak: impl FnOnce(&mut demo_agents::Settings),
    ) -> Self {
        let mut stack = Stack::new();
        let llm = llm_proxy_service::testing::start(&mut stack, |settings| {
            slow_builtin(settings, 0, chunk_delay_ms);
        })
        .await
        .unwrap();
        let mut service_token = String::new();
        let urls = demo_agents::testing::start(&llm.url, |settings| {
            tweak(settings);
            service_token.clone_from(&settings.auth.service_token);
        })
        .await
        .unwrap();
        let llm_url = llm.url;
        Self {
            urls,
            http: reqwest::Client::new(),
            service_token,
            llm_url,
            llm_db: llm.db,
            _stack: stack,
        }
    }

    pub fn url(&self, agent: &str) -> &str {
        &self.urls[agent]
    }

    /// The LLM calls llm-proxy-service recorded for `user`, newest first,
    /// asked as the services ask (the service token and `X-User-Id`).
    pub async fn llm_calls(&self, user: &str) -> Vec<Value> {
        let url = format!("{}/llm-calls", self.llm_url);
        let page = get_as_service(&self.http, &url, &self.service_token, user).await;
        page["items"].as_array().unwrap().clone()
    }

    /// The LLM calls llm-proxy-service stored for `user`, as recorded
    /// (with what the API shows leaves out, such as the API key), once
    /// there are `expected` (the recorder writes a moment after a call).
    pub async fn recorded_calls(
        &self,
        user: &str,
        expected: usize,
    ) -> Vec<llm_proxy_service::store::llm_calls::LlmCall> {
        llm_proxy_service::testing::recorded_calls(&self.llm_db, user, expected).await
    }

    /// Posts a JSON-RPC request (any JSON) to `agent`, with the service
    /// token.
    pub async fn post(&self, agent: &str, version: Option<&str>, body: Value) -> reqwest::Response {
        self.post_with(agent, version, Some(&self.service_token), body)
            .await
    }

    /// Posts a JSON-RPC request to `agent` with `token` as its bearer token,
    /// or no `Authorization` at all.
    pub async fn post_with(
        &self,
        agent: &str,
        version: Option<&str>,
        token: Option<&str>,
        body: Value,
    ) -> reqwest::Response {
        let mut request = self.http.post(self.url(agent)).json(&body);
        if let Some(version) = version {
            request = request.header("A2A-Version", version);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// As `post`; the JSON-RPC response, whatever its HTTP status.
    pub async fn call(&self, agent: &str, version: Option<&str>, body: Value) -> Value {
        self.post(agent, version, body).await.json().await.unwrap()
    }

    /// A non-streaming call; the whole JSON-RPC response.
    pub async fn rpc(
        &self,
        agent: &str,
        version: Option<&str>,
        method: &str,
        params: Value,
    ) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
        self.call(agent, version, body).await
    }

    /// A streaming call; the JSON-RPC response of each SSE event.
    pub async fn stream(
        &self,
        agent: &str,
        version: Option<&str>,
        method: &str,
        params: Value,
    ) -> impl Stream<Item = Value> + use<> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = self.post(agent, version, body).await;
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "a stream, not an error"
        );
        response
            .bytes_stream()
            .eventsource()
            .map(|event| serde_json::from_str::<Value>(&event.unwrap().data).unwrap())
    }

    /// `SendStreamingMessage` of `text` over v1.0; the stream's results.
    pub async fn send_v1(&self, agent: &str, text: &str) -> impl Stream<Item = Value> + use<> {
        let params =
            json!({"message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": text}]}});
        self.stream(agent, V1, "SendStreamingMessage", params)
            .await
            .map(|response| response["result"].clone())
    }
}
