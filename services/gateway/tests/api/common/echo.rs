//! A plain HTTP server standing in for "any upstream" behind an operator's
//! route: it answers with what it received, so tests can see exactly what
//! the gateway forwarded. It is not a copy of a Confab service.
//!
//! - `/echo/…`, `/raw/…`: `{"method","path","query","headers","body","body_len",
//!   "peer_port","version"}` (the port of the connection the request came
//!   over, and its HTTP version); a WebSocket handshake is answered the
//!   same way (a refusal)
//! - `/slow`: answers after 30 s (the gateway's 504)
//! - `/sse`: two SSE events; the second only after the test calls
//!   [`Echo::release_second_event`], so a gateway that buffered the first
//!   would never deliver it and the test would hang instead of pass.
//! - `/socket`: a WebSocket whose first frame is `{"port"}`, the port the
//!   echo listens on (which instance of an upstream took the socket); it
//!   stays open until the client closes it.
//!
//! An idle connection is closed after [`KEEP_ALIVE`], so tests can see a
//! kept-alive connection closed under the gateway. It speaks HTTP/1.1 and,
//! to a client that starts with HTTP/2's preface, HTTP/2.
//!
//! [`stack_with_echo`] starts the stack with the echo behind operator routes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::web::{Bytes, Data, Payload};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use futures_util::StreamExt;
use gateway::api_keys::Scope;
use gateway::proxy::routing::RouteConfig;
use serde_json::json;
use tokio::sync::Notify;

use super::Stack;

/// How long the echo keeps an idle connection open: longer than one
/// request between two others takes when every test of the binary runs at
/// once (at 500 ms the keep-alive test once saw a connection closed
/// between two sequential requests), short enough to wait out.
pub const KEEP_ALIVE: Duration = Duration::from_secs(2);

pub struct Echo {
    pub url: String,
    second_event: Arc<Notify>,
    pub received: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Echo {
    pub async fn start() -> Echo {
        Self::start_on(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).await
    }

    /// The echo on `listener` (a port the test chose, say one an upstream
    /// instance was refusing on).
    pub async fn start_on(listener: std::net::TcpListener) -> Echo {
        let second_event = Arc::new(Notify::new());
        let received = Arc::new(Mutex::new(Vec::new()));
        let state = (second_event.clone(), received.clone());
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(Data::new(state.clone()))
                .app_data(web::PayloadConfig::new(64 << 20))
                .route("/slow", web::to(slow))
                .route("/sse", web::to(sse))
                .route("/socket", web::get().to(socket))
                .default_service(web::to(echo))
        })
        .workers(1)
        .keep_alive(KEEP_ALIVE)
        .listen_auto_h2c(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Echo {
            url: format!("http://127.0.0.1:{port}"),
            second_event,
            received,
        }
    }

    pub fn release_second_event(&self) {
        self.second_event.notify_one();
    }
}

/// The URL of a port nothing listens on: bound, then let go, so connecting
/// there is refused.
pub fn refusing_url() -> String {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port())
}

type State = Data<(Arc<Notify>, Arc<Mutex<Vec<serde_json::Value>>>)>;

async fn echo(req: HttpRequest, mut payload: Payload, state: State) -> HttpResponse {
    let mut body = Vec::new();
    // A WebSocket handshake's payload is the connection itself, read to its
    // end: answered (200, a refusal) without reading it.
    if !req.headers().contains_key("upgrade") {
        while let Some(chunk) = payload.next().await {
            match chunk {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(_) => return HttpResponse::BadRequest().finish(),
            }
        }
    }
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in req.headers() {
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(value.to_str().unwrap_or("<binary>").to_owned());
    }
    let seen = json!({
        "method": req.method().as_str(),
        "path": req.path(),
        "query": req.query_string(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "body_len": body.len(),
        "peer_port": req.peer_addr().map(|peer| peer.port()),
        "version": format!("{:?}", req.version()),
    });
    state.1.lock().unwrap().push(seen.clone());
    HttpResponse::Ok().json(seen)
}

async fn socket(req: HttpRequest, body: Payload) -> actix_web::Result<HttpResponse> {
    let (response, mut session, mut messages) = actix_ws::handle(&req, body)?;
    let port = req.app_config().local_addr().port();
    actix_web::rt::spawn(async move {
        if session
            .text(json!({"port": port}).to_string())
            .await
            .is_err()
        {
            return;
        }
        while let Some(Ok(message)) = messages.next().await {
            if let actix_ws::Message::Close(reason) = message {
                let _ = session.close(reason).await;
                return;
            }
        }
    });
    Ok(response)
}

async fn slow() -> HttpResponse {
    tokio::time::sleep(Duration::from_secs(30)).await;
    HttpResponse::Ok().finish()
}

async fn sse(state: State) -> HttpResponse {
    let release = state.0.clone();
    let events = futures_util::stream::unfold(0, move |n| {
        let release = release.clone();
        async move {
            match n {
                0 => Some((Ok::<_, actix_web::Error>(Bytes::from("data: first\n\n")), 1)),
                1 => {
                    release.notified().await;
                    Some((Ok(Bytes::from("data: second\n\n")), 2))
                }
                _ => None,
            }
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .streaming(events)
}

pub fn route(prefix: &str, upstream: &str, rewrite: &str, inject_auth: bool) -> RouteConfig {
    RouteConfig {
        prefix: prefix.into(),
        upstream: upstream.into(),
        rewrite: rewrite.into(),
        inject_auth,
        rate_limited: false,
        scope: Scope::Chat,
        body_auth: true,
    }
}

/// The stack plus an echo upstream behind `/echo` (auth injected), `/raw`
/// (no auth), `/slow`, `/sse`, and `/down` (nothing listens there).
pub async fn stack_with_echo(configure: impl FnOnce(&mut gateway::Settings)) -> (Stack, Echo) {
    let echo = Echo::start().await;
    let down = refusing_url();
    let echo_url = echo.url.clone();
    let stack = Stack::start_with(move |settings| {
        settings.upstreams.insert("echo".into(), echo_url.into());
        settings.upstreams.insert("down".into(), down.into());
        settings.extra_routes = vec![
            route("/echo", "echo", "/echo", true),
            route("/raw", "echo", "/raw", false),
            route("/slow", "echo", "/slow", false),
            route("/sse", "echo", "/sse", false),
            route("/down", "down", "/", false),
            route("/api/legacy/chats", "chat", "/chat/conversations", true),
        ];
        settings.timeouts.response_secs = 2;
        configure(settings);
    })
    .await;
    (stack, echo)
}
