//! The whole stack for integration tests: llm-proxy-service, the math agent,
//! chat-service and the gateway, each the real service started with its
//! `build()` on port 0 against a fresh database (SQLite, or PostgreSQL when
//! `CONFAB_TEST_DATABASE_URL` is set).

pub mod echo;
pub mod ws;

use confab_kit::db::Db;
use confab_kit::settings::ServiceSettings;
use confab_kit::testing;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::{Value, json};

pub struct Stack {
    pub gateway: String,
    /// dashboard-proxy, relaying WebSockets to the gateway.
    pub dashboard: String,
    pub gateway_db: Db,
    pub chat: String,
    pub llm: String,
    pub math_agent: String,
    pub llm_db: Db,
    pub http: reqwest::Client,
    /// The gateway's service token (it serves its /metrics to it).
    pub service_token: String,
    /// What the gateway was started with (port 0), for another instance.
    gateway_settings: gateway::Settings,
    /// The services' databases, kept for the life of the test.
    _stack: testing::Stack,
}

/// The name of the admin `with_admin` configures.
pub const ADMIN_NAME: &str = "root";
/// That admin's password (long enough for the gateway to accept it).
pub const ADMIN_PASSWORD: &str = "admin password";

/// Makes `ADMIN_NAME` (with `ADMIN_PASSWORD`) the admin the gateway bootstraps.
pub fn with_admin(settings: &mut gateway::Settings) {
    settings.admin.username = ADMIN_NAME.into();
    settings.admin.password = ADMIN_PASSWORD.into();
}

/// The password of the users `Stack::user` registers.
pub const USER_PASSWORD: &str = "correct horse battery";

/// A registered, logged-in user.
pub struct User {
    pub id: String,
    pub token: String,
    pub refresh_token: String,
}

impl Stack {
    pub async fn start() -> Stack {
        Self::start_with(|_| {}).await
    }

    /// The stack with the gateway's settings adjusted by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut gateway::Settings)) -> Stack {
        let mut stack = testing::Stack::new();
        // Bound first: the other services verify user tokens against its JWKS.
        let gateway_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let gateway_url = format!(
            "http://127.0.0.1:{}",
            gateway_listener.local_addr().unwrap().port()
        );
        let jwks_url = format!("{gateway_url}/.well-known/jwks.json");

        let llm = llm_proxy_service::testing::start(&mut stack, |settings| {
            settings.auth.jwt.jwks_url.clone_from(&jwks_url);
        })
        .await
        .unwrap();
        let agent_urls = demo_agents::testing::start(&llm.url, |_| {}).await.unwrap();
        let math_agent = agent_urls["math"].trim_end_matches('/').to_owned();

        let mut chat = chat_service::Settings::defaults().unwrap();
        chat.server.port = 0;
        chat.database = stack.database("chat").await.unwrap();
        chat.bus = stack.bus();
        chat.auth.jwt.jwks_url = jwks_url;
        chat.budget.url.clone_from(&llm.url);
        for (name, url) in agent_urls {
            chat.agents.get_mut(&name).unwrap().url = url;
        }
        let chat_url = stack.spawn(chat_service::build(chat).await.unwrap());

        let mut gateway = gateway::Settings::defaults().unwrap();
        gateway.server.port = 0;
        gateway.database = stack.database("gateway").await.unwrap();
        gateway.bus = stack.bus();
        gateway
            .upstreams
            .insert("chat".into(), chat_url.clone().into());
        gateway
            .upstreams
            .insert("llm_proxy".into(), llm.url.clone().into());
        configure(&mut gateway);
        let service_token = gateway.auth.service_token.clone();
        let gateway_settings = gateway.clone();
        let gateway = gateway::build_on(gateway_listener, gateway).await.unwrap();
        let gateway_db = gateway.db().unwrap().clone();
        tokio::spawn(gateway.run_until_stopped());

        let mut dashboard = dashboard_proxy::Settings::defaults().unwrap();
        dashboard.server.port = 0;
        dashboard.upstream.url = gateway_url.replace("http://", "ws://");
        let dashboard_url = stack.spawn(dashboard_proxy::build(dashboard).await.unwrap());

        Stack {
            gateway: gateway_url,
            dashboard: dashboard_url,
            gateway_db,
            chat: chat_url,
            llm: llm.url,
            math_agent,
            llm_db: llm.db,
            http: reqwest::Client::new(),
            service_token,
            gateway_settings,
            _stack: stack,
        }
    }

    /// Another instance of the gateway: the same settings, database and
    /// bus, its own port. Its URL.
    pub async fn another_gateway(&self) -> String {
        let running = gateway::build(self.gateway_settings.clone()).await.unwrap();
        let url = format!("http://127.0.0.1:{}", running.port());
        tokio::spawn(running.run_until_stopped());
        url
    }

    /// The stack with the gateway bootstrapping the `with_admin` admin.
    /// The gateway's routing table, as it was started with.
    pub fn routing_table(&self) -> gateway::proxy::routing::RoutingTable {
        let settings = &self.gateway_settings;
        let routes: Vec<_> = settings
            .routes
            .iter()
            .chain(&settings.extra_routes)
            .cloned()
            .collect();
        gateway::proxy::routing::RoutingTable::new(
            &routes,
            &settings.upstreams,
            std::time::Duration::from_secs(settings.timeouts.instance_retry_secs),
            &settings.proxy.http2,
        )
        .unwrap()
    }

    pub async fn start_with_admin() -> Stack {
        Self::start_with(with_admin).await
    }

    /// Logs the `with_admin` admin in and returns its access token.
    pub async fn admin_token(&self) -> String {
        let login = self.login(ADMIN_NAME, ADMIN_PASSWORD).await;
        let tokens: Value = login.json().await.unwrap();
        tokens["access_token"].as_str().unwrap().to_owned()
    }

    /// A request to the gateway at `path`.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.gateway))
    }

    /// A `GET` of the gateway's `path`.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, path)
    }

    /// A `POST` to the gateway's `path`.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, path)
    }

    pub async fn register(&self, username: &str, password: &str) -> reqwest::Response {
        self.auth_post("register", credentials(username, password))
            .await
    }

    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.auth_post("login", credentials(username, password))
            .await
    }

    /// Registers and logs in a user (with [`USER_PASSWORD`]).
    pub async fn user(&self, username: &str) -> User {
        let registered = self.register(username, USER_PASSWORD).await;
        let registered: Value = registered.json().await.unwrap();
        let tokens: Value = self
            .login(username, USER_PASSWORD)
            .await
            .json()
            .await
            .unwrap();
        User {
            id: registered["id"].as_str().unwrap().to_owned(),
            token: tokens["access_token"].as_str().unwrap().to_owned(),
            refresh_token: tokens["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// `POST /api/v1/auth/{endpoint}` with a JSON body.
    pub async fn auth_post(&self, endpoint: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1/auth/{endpoint}", self.gateway))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.auth_post("refresh", json!({"refresh_token": refresh_token}))
            .await
    }

    pub async fn me(&self, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/api/v1/auth/me", self.gateway))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn create_conversation(&self, user: &User, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1/conversations", self.gateway))
            .bearer_auth(&user.token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a conversation and returns its id.
    pub async fn conversation(&self, user: &User) -> String {
        let created: Value = self
            .create_conversation(user, json!({}))
            .await
            .json()
            .await
            .unwrap();
        created["id"].as_str().unwrap().to_owned()
    }

    /// Posts raw bytes as a turn through the gateway.
    pub async fn post_stream_raw(
        &self,
        user: &User,
        conversation: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.http
            .post(format!(
                "{}/api/v1/conversations/{conversation}/messages/stream",
                self.gateway
            ))
            .bearer_auth(&user.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_stream(
        &self,
        user: &User,
        conversation: &str,
        message: &str,
    ) -> reqwest::Response {
        self.post_stream_raw(user, conversation, json!({"message": message}).to_string())
            .await
    }

    /// Posts a turn and reads its events to the end.
    pub async fn turn(
        &self,
        user: &User,
        conversation: &str,
        message: &str,
    ) -> Vec<(String, Value)> {
        sse_events(self.post_stream(user, conversation, message).await).await
    }

    pub async fn messages(&self, user: &User, conversation: &str) -> reqwest::Response {
        self.http
            .get(format!(
                "{}/api/v1/conversations/{conversation}/messages",
                self.gateway
            ))
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap()
    }

    /// The messages of a conversation, as its owner sees them.
    pub async fn message_items(&self, user: &User, conversation: &str) -> Vec<Value> {
        let page: Value = self
            .messages(user, conversation)
            .await
            .json()
            .await
            .unwrap();
        page["items"].as_array().unwrap().clone()
    }
}

/// The `kid` in an access token's header: which key signed it.
pub fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// The JSON body of a registration or a login.
fn credentials(username: &str, password: &str) -> Value {
    json!({"username": username, "password": password})
}

/// Reads an SSE response to its end: each event's `id` and JSON `data`.
pub async fn sse_events(response: reqwest::Response) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    let mut stream = response.bytes_stream().eventsource();
    while let Some(event) = stream.next().await {
        let event = event.unwrap();
        events.push((event.id, serde_json::from_str(&event.data).unwrap()));
    }
    events
}

/// Sends `request`; a request that gets no response fails the test.
pub async fn send(request: reqwest::RequestBuilder) -> reqwest::Response {
    request.send().await.unwrap()
}

/// Sends `request` and reads its response's JSON body.
pub async fn fetch_json(request: reqwest::RequestBuilder) -> Value {
    send(request).await.json().await.unwrap()
}

/// Asserts that `response` has `status` and the JSON error `code`; `case`
/// says what was sent, for the failure message.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str, case: &str) {
    assert_eq!(response.status(), status, "{case}");
    assert_eq!(error_code(response).await, code, "{case}");
}

/// Asserts the JSON error body and returns its code.
pub async fn error_code(response: reqwest::Response) -> String {
    let request_id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(
        error["request_id"].as_str().map(str::to_owned),
        request_id,
        "{body}"
    );
    error["code"].as_str().unwrap().to_owned()
}

/// The LLM calls recorded for a user, once `expected` of them are written
/// (the proxy records off the request path, a moment after answering).
pub async fn llm_calls_of(
    db: &Db,
    user_id: &str,
    expected: usize,
) -> Vec<llm_proxy_service::store::llm_calls::LlmCall> {
    llm_proxy_service::testing::recorded_calls(db, user_id, expected).await
}
