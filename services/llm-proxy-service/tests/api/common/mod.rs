//! Starting llm-proxy-service for a test, and an OpenAI-compatible upstream
//! that the test controls.

pub mod buses;
pub mod processes;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use self::buses::TestBus;
use std::time::Duration;

use actix_web::web::{self, Bytes};
use actix_web::{App, HttpResponse, HttpServer};
use confab_kit::db::Db;
use confab_kit::settings::ServiceSettings;
use confab_kit::testing::{TestDatabase, init_test_tracing};
use llm_proxy_service::Settings;
use llm_proxy_service::providers::ProviderSettings;
use llm_proxy_service::providers::openai::OpenAiSettings;
use llm_proxy_service::store::llm_calls::{self, LlmCall};
use serde_json::{Value, json};

pub const MATH_KEY: &str = "confab-dev-agent-key-math";
pub const TEXT_KEY: &str = "confab-dev-agent-key-text";
pub const SERVICE_TOKEN: &str = "confab-dev-service-token";

pub struct Proxy {
    pub url: String,
    pub db: Db,
    pub http: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
    running: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Shared by the instances a test starts on one database.
    database: Arc<TestDatabase>,
}

impl Proxy {
    /// The proxy with its default settings changed by `adjust`.
    pub async fn start(adjust: impl FnOnce(&mut Settings)) -> Self {
        init_test_tracing();
        let database = Arc::new(TestDatabase::new("llm-proxy").await.unwrap());
        Self::start_on(database, adjust).await
    }

    /// The proxy on an existing database (a restart).
    pub async fn start_on(database: Arc<TestDatabase>, adjust: impl FnOnce(&mut Settings)) -> Self {
        let bus = TestBus::Local(confab_kit::bus::Bus::in_process());
        Self::start_with(database, &bus, adjust).await
    }

    /// The proxy on a new database and `bus`.
    pub async fn start_on_bus(bus: &TestBus, adjust: impl FnOnce(&mut Settings)) -> Self {
        init_test_tracing();
        let database = Arc::new(TestDatabase::new("llm-proxy").await.unwrap());
        Self::start_with(database, bus, adjust).await
    }

    /// The proxy on `database` and `bus`: another instance, or a restart.
    pub async fn start_with(
        database: Arc<TestDatabase>,
        bus: &TestBus,
        adjust: impl FnOnce(&mut Settings),
    ) -> Self {
        let mut settings = Settings::defaults().unwrap();
        settings.server.port = 0;
        settings.server.shutdown_timeout_secs = 1;
        settings.database = database.settings.clone();
        adjust(&mut settings);
        let app = bus.build(settings).await;
        let url = format!("http://127.0.0.1:{}", app.port());
        let db = app.db().unwrap().clone();
        let handle = app.handle();
        let running = tokio::spawn(app.run_until_stopped());
        Self {
            url,
            db,
            http: reqwest::Client::new(),
            handle,
            running,
            database,
        }
    }

    /// Its database, to start another instance on.
    pub fn database(&self) -> Arc<TestDatabase> {
        Arc::clone(&self.database)
    }

    /// Stops the proxy gracefully, waits until it has written everything it
    /// queued, and gives its database back.
    pub async fn stop(self) -> Arc<TestDatabase> {
        self.handle.stop(true).await;
        self.running.await.unwrap().unwrap();
        self.database
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.url.replacen("http", "ws", 1))
    }

    /// A completion request attributed to usr-ada in conv-1, with an agent key.
    pub fn completions(&self, key: Option<&str>) -> reqwest::RequestBuilder {
        let request = self
            .http
            .post(format!("{}/v1/chat/completions", self.url))
            .header("x-user-id", "usr-ada")
            .header("x-conversation-id", "conv-1");
        match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// Sends `body` as a completion request with the math agent's key, and
    /// answers the proxy's response.
    pub async fn complete(&self, body: &Value) -> reqwest::Response {
        self.completions(Some(MATH_KEY))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// A request to `path` with the service token, for `user` as `role`
    /// (the gateway's headers).
    pub fn service(
        &self,
        method: reqwest::Method,
        path: &str,
        user: &str,
        role: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .header("x-service-token", SERVICE_TOKEN)
            .header("x-user-id", user)
            .header("x-user-role", role)
    }

    /// A completion request as a user calling directly through the
    /// gateway: the service token and `X-User-Id`, no agent; with the API
    /// key `api_key` when given.
    pub fn direct(
        &self,
        user: &str,
        api_key: Option<&str>,
        body: &Value,
    ) -> reqwest::RequestBuilder {
        let request = self
            .http
            .post(format!("{}/v1/chat/completions", self.url))
            .header("x-service-token", SERVICE_TOKEN)
            .header("x-user-id", user)
            .json(body);
        match api_key {
            Some(key) => request.header("x-api-key-id", key),
            None => request,
        }
    }

    /// Waits until `user` has `n` ended calls recorded, and answers them
    /// (newest first).
    pub async fn calls_of(&self, user: &str, n: usize) -> Vec<LlmCall> {
        for _ in 0..400 {
            let calls = llm_calls::list_for_user(&self.db, user, 1000)
                .await
                .unwrap();
            if calls.len() >= n {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{n} calls of {user} not recorded");
    }

    /// `PUT /budgets/{subject}/{id}` as an admin through the gateway.
    pub async fn put_budget(&self, subject: &str, id: &str, body: &Value) -> reqwest::Response {
        self.service(
            reqwest::Method::PUT,
            &format!("/budgets/{subject}/{id}"),
            "usr-root",
            "admin",
        )
        .json(body)
        .send()
        .await
        .unwrap()
    }

    /// `GET /openapi.json`, which needs no credentials.
    pub async fn openapi(&self) -> reqwest::Response {
        self.http
            .get(format!("{}/openapi.json", self.url))
            .send()
            .await
            .unwrap()
    }

    /// `GET /budget-status{query}` as chat-service asks it.
    pub async fn budget_status(&self, query: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/budget-status{query}", self.url))
            .header("x-service-token", SERVICE_TOKEN)
            .send()
            .await
            .unwrap()
    }

    /// `/metrics` as text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits until `n` calls of usr-ada are recorded (the recorder writes
    /// off the request path, a moment after the client got its answer).
    pub async fn calls(&self, n: usize) -> Vec<LlmCall> {
        for _ in 0..400 {
            let calls = llm_calls::list_for_user(&self.db, "usr-ada", 1000)
                .await
                .unwrap();
            if calls.len() >= n {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        llm_calls::list_for_user(&self.db, "usr-ada", 1000)
            .await
            .unwrap()
    }
}

/// An OpenAI-compatible upstream on its own port. Under `/{behaviour}/v1`:
/// `ok` answers; `flaky` answers 500 to its first request, then like `ok`;
/// `dies` streams three chunks and then drops the connection; `refuses`
/// answers 400; `cached` answers like `ok` with 4 of its input tokens
/// reported as cached (`prompt_tokens_details.cached_tokens`). It keeps
/// every request body it received.
pub struct Upstream {
    pub url: String,
    pub bodies: Arc<Mutex<Vec<Value>>>,
    flaky_hits: Arc<AtomicUsize>,
}

impl Upstream {
    pub async fn start() -> Self {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let flaky_hits = Arc::new(AtomicUsize::new(0));
        let state = web::Data::new((bodies.clone(), flaky_hits.clone()));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/{behaviour}/v1/chat/completions", web::post().to(answer))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
        let url = format!("http://127.0.0.1:{}", server.addrs()[0].port());
        tokio::spawn(server.run());
        Self {
            url,
            bodies,
            flaky_hits,
        }
    }

    /// Provider settings for one behaviour of this upstream.
    pub fn provider(&self, behaviour: &str) -> ProviderSettings {
        openai_provider(&format!("{}/{behaviour}/v1", self.url))
    }

    pub fn flaky_hits(&self) -> usize {
        self.flaky_hits.load(Ordering::SeqCst)
    }
}

pub fn openai_provider(base_url: &str) -> ProviderSettings {
    ProviderSettings::Openai(OpenAiSettings {
        base_url: base_url.to_owned(),
        api_key_env: None,
        headers: BTreeMap::from([("x-upstream-test".to_owned(), "yes".to_owned())]),
        connect_timeout_secs: 1,
        first_byte_timeout_secs: 5,
        models: vec!["m".to_owned()],
    })
}

type UpstreamState = web::Data<(Arc<Mutex<Vec<Value>>>, Arc<AtomicUsize>)>;

async fn answer(
    path: web::Path<String>,
    state: UpstreamState,
    body: web::Json<Value>,
) -> HttpResponse {
    let body = body.into_inner();
    state.0.lock().unwrap().push(body.clone());
    let behaviour = path.into_inner();
    if behaviour == "flaky" && state.1.fetch_add(1, Ordering::SeqCst) == 0 {
        return HttpResponse::InternalServerError()
            .json(json!({"error": {"message": "try again"}}));
    }
    if behaviour == "refuses" {
        return HttpResponse::BadRequest()
            .json(json!({"error": {"message": "bad model", "type": "invalid_request_error"}}));
    }
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let usage = |completion_tokens: u64| {
        let mut usage = json!({"prompt_tokens": 7, "completion_tokens": completion_tokens,
            "total_tokens": 7 + completion_tokens});
        if behaviour == "cached" {
            usage["prompt_tokens_details"] = json!({"cached_tokens": 4});
        }
        usage
    };
    if !body["stream"].as_bool().unwrap_or(false) {
        return HttpResponse::Ok().json(json!({
            "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "from upstream"}, "finish_reason": "stop"}],
            "usage": usage(2),
            "system_fingerprint": "fp_test"
        }));
    }
    let chunk = |delta: Value, finish: Value| {
        let chunk = json!({"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        Ok::<_, std::io::Error>(Bytes::from(format!("data: {chunk}\n\n")))
    };
    let mut frames = vec![
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"content": "one "}), Value::Null),
        chunk(json!({"content": "two "}), Value::Null),
    ];
    if behaviour == "dies" {
        frames.push(Err(std::io::Error::other("upstream died")));
    } else {
        frames.push(chunk(json!({"content": "three"}), Value::Null));
        frames.push(chunk(json!({}), json!("stop")));
        let usage = json!({"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": model,
            "choices": [], "usage": usage(3)});
        frames.push(Ok(Bytes::from(format!("data: {usage}\n\n"))));
        frames.push(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
    }
    // The failure comes a moment after the first chunks, so they are on the
    // wire (headers included) before the connection drops.
    let frames =
        futures_util::StreamExt::then(futures_util::stream::iter(frames), |frame| async move {
            if frame.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            frame
        });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .streaming(frames)
}

/// A streamed completion request to the proxy at `base`, with an agent
/// `key`, for `user`: the builtin model echoes `prompt` word by word.
pub fn streamed_request(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    user: &str,
    prompt: &str,
) -> reqwest::RequestBuilder {
    http.post(format!("{base}/v1/chat/completions"))
        .bearer_auth(key)
        .header("x-user-id", user)
        .json(&json!({"model": "builtin", "stream": true,
            "messages": [{"role": "user", "content": prompt}]}))
}

/// Starts a [`streamed_request`]: the call's id, and its response, still
/// streaming.
pub async fn start_streamed(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    user: &str,
    prompt: &str,
) -> (String, reqwest::Response) {
    let response = streamed_request(http, base, key, user, prompt)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = response.headers()[llm_proxy_service::call::CALL_ID_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    (id, response)
}

/// The `data:` payloads of an SSE response, in order.
pub async fn sse_data(response: reqwest::Response) -> Vec<String> {
    use eventsource_stream::Eventsource;
    use futures_util::StreamExt;
    let mut stream = response.bytes_stream().eventsource();
    let mut data = Vec::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(event) => data.push(event.data),
            Err(_) => break,
        }
    }
    data
}

/// The value of the series of `name` whose labels include every one of
/// `labels` (`key="value"`), 0 when there is none.
pub fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next())
        .filter_map(|value| value.parse::<f64>().ok())
        .sum()
}
