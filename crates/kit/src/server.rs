//! Serving a Confab service: the common routes (`/health`, `/ready`,
//! `/metrics`), `X-Request-Id`, request metrics, the JSON error body, and a
//! handle that tests start on port 0.

use std::future::Future;
use std::net::TcpListener;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Server, ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpMessage, HttpRequest, HttpResponse, HttpServer, web};
use futures_util::future::BoxFuture;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use confab_protocol::error::ErrorBody;

use crate::api::Routes;
use crate::db::Db;
use crate::error::{ApiError, from_actix};
use crate::settings::ServerSettings;
use crate::trace_context;

/// Name and version a service reports on `/health`.
#[derive(Debug, Clone, Copy)]
pub struct ServiceInfo {
    pub name: &'static str,
    pub version: &'static str,
}

/// What `/ready` checks.
#[derive(Clone)]
pub enum Readiness {
    /// The service has no dependency that can be down (dashboard-proxy, agents).
    Always,
    /// Ready while the database answers and the bus (when it is NATS) is
    /// connected: an instance cut off from the others must not get traffic.
    Dependencies { db: Db, bus: crate::bus::Bus },
}

/// The request id of the request being served, as given by the caller in
/// `X-Request-Id` or made up here.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The route a request is counted under in `http_request_duration_seconds`,
/// set by a handler that routes requests itself (the gateway's routing
/// table); without it, the actix pattern that matched, or `unmatched`.
#[derive(Debug, Clone)]
pub struct RouteLabel(pub std::sync::Arc<str>);

/// The request's place in its trace (see [`crate::trace_context`]). The
/// `traceparent` for the next service is made on first use only: most
/// requests (health checks, reads) call no other service.
struct RequestTrace {
    span: tracing::Span,
    parent: opentelemetry::Context,
    hop: std::cell::OnceCell<String>,
}

/// Who may read `/metrics`.
#[derive(Clone, Default)]
pub enum MetricsAccess {
    /// Anyone: for services that only the other services reach.
    #[default]
    Public,
    /// Whoever the check lets through; its error is the answer otherwise.
    /// The gateway faces clients, so it serves its metrics only to the
    /// service token or an admin (issue 16).
    Guarded(MetricsGuard),
}

/// The check run on every request to a guarded `/metrics`.
pub type MetricsGuard = std::sync::Arc<
    dyn Fn(HttpRequest) -> futures_util::future::LocalBoxFuture<'static, Result<(), ApiError>>
        + Send
        + Sync,
>;

/// A bound, not yet running service.
pub struct Running {
    port: u16,
    server: Server,
    db: Option<Db>,
    on_stop: Vec<BoxFuture<'static, ()>>,
}

impl Running {
    /// The port the service listens on (the real one when bound to port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The service's database, for services that have one (tests read it).
    pub fn db(&self) -> Option<&Db> {
        self.db.as_ref()
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Work to finish after the server stopped and before the process may
    /// exit, such as flushing queued writes.
    pub fn on_stop(mut self, work: impl Future<Output = ()> + Send + 'static) -> Self {
        self.on_stop.push(Box::pin(work));
        self
    }

    /// Serves until SIGINT/SIGTERM or [`ServerHandle::stop`], then runs the
    /// [`on_stop`](Self::on_stop) work.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        for work in self.on_stop {
            work.await;
        }
        result
    }
}

/// Binds the listener of `settings` (port 0 picks a free port).
pub fn bind(settings: &ServerSettings) -> std::io::Result<TcpListener> {
    TcpListener::bind((settings.host.as_str(), settings.port))
}

/// Builds the HTTP server: the common routes and middleware around the
/// service's own routes from `configure`. `/metrics` is public.
///
/// It speaks HTTP/1.1 and, to a client that starts with HTTP/2's preface
/// (prior knowledge, no TLS), HTTP/2: Confab's services call each other
/// that way where they are configured to (the gateway's `[proxy] http2`,
/// chat-service's agents with `http2 = true`, demo-agents' `[llm] http2`),
/// so that one connection carries many streaming calls instead of one
/// connection each.
pub fn serve<F>(
    listener: TcpListener,
    settings: &ServerSettings,
    info: ServiceInfo,
    readiness: Readiness,
    configure: F,
) -> std::io::Result<Running>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    serve_with(
        listener,
        settings,
        info,
        readiness,
        MetricsAccess::Public,
        configure,
    )
}

/// [`serve`] with `/metrics` served as `metrics_access` says.
pub fn serve_with<F>(
    listener: TcpListener,
    settings: &ServerSettings,
    info: ServiceInfo,
    readiness: Readiness,
    metrics_access: MetricsAccess,
    configure: F,
) -> std::io::Result<Running>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let port = listener.local_addr()?.port();
    let db = match &readiness {
        Readiness::Dependencies { db, .. } => Some(db.clone()),
        Readiness::Always => None,
    };
    let metrics = metrics_handle();
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(info))
            .app_data(web::Data::new(readiness.clone()))
            .app_data(web::Data::new(metrics.clone()))
            .app_data(web::Data::new(metrics_access.clone()))
            .wrap(from_fn(request_context))
            .configure(|cfg| routes(&mut Routes::new(cfg, &mut Vec::new())))
            .configure(configure.clone())
            .default_service(web::to(no_route))
    })
    .on_connect(no_delay)
    .shutdown_timeout(settings.shutdown_timeout_secs)
    .listen_auto_h2c(listener)?;
    if settings.workers > 0 {
        server = server.workers(settings.workers);
    }
    Ok(Running {
        port,
        server: server.run(),
        db,
        on_stop: Vec::new(),
    })
}

/// Turns Nagle's algorithm off on every accepted connection. Confab streams
/// small frames (SSE events, WebSocket messages): with Nagle on, a frame
/// written while the previous one is unacknowledged waits for the peer's
/// delayed ACK (40 ms on Linux).
fn no_delay(connection: &dyn std::any::Any, _: &mut actix_web::dev::Extensions) {
    if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>()
        && let Err(err) = tcp.set_nodelay(true)
    {
        tracing::debug!(error = %err, "could not set TCP_NODELAY");
    }
}

/// The routes every service serves besides its own: `/health`, `/ready`
/// and `/metrics` (described in [`crate::api::document`]).
pub fn routes(r: &mut Routes<'_>) {
    r.get("/health", health)
        .get("/ready", ready)
        .get("/metrics", render_metrics);
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/health",
    tag = "service",
    responses((status = 200, description = "`{\"status\":\"ok\",\"service\",\"version\"}`", body = Object))
)]
pub(crate) async fn health(info: web::Data<ServiceInfo>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "service": info.name,
        "version": info.version,
    }))
}

fn not_ready(reason: String) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        reason,
    )
}

/// Readiness: the database answers and the bus is connected.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "service",
    responses(
        (status = 200, description = "`{\"status\":\"ready\"}`", body = Object),
        (status = 503, description = "`not_ready`: the database or the bus cannot be reached.", body = ErrorBody)
    )
)]
pub(crate) async fn ready(readiness: web::Data<Readiness>) -> Result<HttpResponse, ApiError> {
    match readiness.get_ref() {
        Readiness::Always => {}
        Readiness::Dependencies { db, bus } => {
            db.ping().await.map_err(|e| {
                tracing::warn!(error = %e, "readiness check failed");
                not_ready("database unreachable".to_owned())
            })?;
            bus.check().await.map_err(|e| {
                tracing::warn!(error = %e, "readiness check failed");
                not_ready(e.to_string())
            })?;
        }
    }
    Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
}

/// Prometheus metrics. The gateway's are for the service token or an admin.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4.", content_type = "text/plain", body = String),
        (status = 401, description = "`unauthorized` (the gateway only): no service token or admin token.", body = ErrorBody),
        (status = 403, description = "`forbidden` (the gateway only): a user's token.", body = ErrorBody)
    )
)]
pub(crate) async fn render_metrics(
    req: HttpRequest,
    handle: web::Data<PrometheusHandle>,
    access: web::Data<MetricsAccess>,
) -> Result<HttpResponse, ApiError> {
    if let MetricsAccess::Guarded(check) = access.get_ref() {
        check(req).await?;
    }
    handle.run_upkeep();
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render()))
}

async fn no_route() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("route"))
}

/// How often the recorder's histograms are drained into their buckets.
pub const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The name of the thread that does it.
pub const METRICS_UPKEEP_THREAD: &str = "metrics-upkeep";

/// The process-wide Prometheus recorder, installed on first use, with its
/// upkeep thread.
///
/// A histogram keeps every sample recorded into it until upkeep drains them
/// into its buckets. A recorder installed by `install_recorder` (as here,
/// because `/metrics` is served by the service's own HTTP server) gets no
/// upkeep task of its own: it ran only when `/metrics` was scraped, so a
/// service nobody scraped kept eight bytes per request, without end.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = install_recorder();
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name(METRICS_UPKEEP_THREAD.into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(METRICS_UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(err) = spawned {
                tracing::warn!(error = %err, "could not start the metrics upkeep thread; histograms are drained only when /metrics is read");
            }
            handle
        })
        .clone()
}

fn install_recorder() -> PrometheusHandle {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            &[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0,
            ],
        )
        .unwrap_or_else(|_| PrometheusBuilder::new());
    match builder.install_recorder() {
        Ok(handle) => handle,
        // Another recorder is already installed (only in odd test setups):
        // keep a private one so /metrics still answers.
        Err(_) => PrometheusBuilder::new().build_recorder().handle(),
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest caller-supplied request id we propagate; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Takes or makes the request id, runs the request in a span, records its
/// duration, and renders any error as the JSON error body with the request id.
async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= MAX_REQUEST_ID_LEN)
        .filter(|v| v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = method_label(req.method());
    let span = tracing::info_span!(
        "request",
        http.method = %req.method(),
        http.path = %req.path(),
        request_id = %request_id,
        http.status = tracing::field::Empty,
    );
    let parent = trace_context::incoming(req.headers());
    // Without an OpenTelemetry layer there is nothing to attach the parent to.
    let _ = span.set_parent(parent.clone());
    req.extensions_mut().insert(RequestTrace {
        span: span.clone(),
        parent,
        hop: std::cell::OnceCell::new(),
    });
    let started = Instant::now();
    let result = next.call(req).instrument(span.clone()).await;
    let mut res = match result {
        Ok(res) => match res.response().error().map(from_actix) {
            Some(api) => {
                let (req, _) = res.into_parts();
                ServiceResponse::new(req, api.response_with(Some(&request_id)))
            }
            None => res.map_into_boxed_body(),
        },
        Err(err) => return Err(err),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    // A request that asked for an upgrade (`Connection: Upgrade`) and is
    // answered without one: actix-http closes the connection after the
    // answer, but writes `Connection: upgrade` in it, so a client keeps the
    // connection for its next request and finds it closed. Say `close`.
    if res.request().head().connection_type() == ConnectionType::Upgrade
        && res.status() != StatusCode::SWITCHING_PROTOCOLS
    {
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    let status = res.status().as_u16();
    span.record("http.status", status);
    let elapsed = started.elapsed();
    let request = res.request();
    match request.extensions().get::<RouteLabel>() {
        Some(label) => record_request(method, &label.0, status, elapsed),
        None => match request.match_pattern() {
            Some(pattern) => record_request(method, &pattern, status, elapsed),
            None => record_request(method, "unmatched", status, elapsed),
        },
    }
    Ok(res)
}

/// The `method` label: the standard methods by name, any other as `OTHER`,
/// so a client inventing methods cannot add series without end.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

thread_local! {
    /// `http_request_duration_seconds` by method and status, then route,
    /// kept by each worker thread: the recorder's lookup (labels built and
    /// hashed, its shared map locked) happens once per series and thread
    /// instead of once per request. Methods, statuses and routes are all
    /// bounded (see [`method_label`]; routes are patterns or route labels).
    static DURATIONS: std::cell::RefCell<DurationSeries> = std::cell::RefCell::default();
}

type DurationSeries = std::collections::HashMap<
    (&'static str, u16),
    std::collections::HashMap<Box<str>, metrics::Histogram>,
>;

fn record_request(method: &'static str, route: &str, status: u16, elapsed: Duration) {
    DURATIONS.with_borrow_mut(|series| {
        let by_route = series.entry((method, status)).or_default();
        if let Some(histogram) = by_route.get(route) {
            histogram.record(elapsed.as_secs_f64());
            return;
        }
        let labels = [
            ("method", method.to_owned()),
            ("route", route.to_owned()),
            ("status", status.to_string()),
        ];
        let histogram = metrics::histogram!("http_request_duration_seconds", &labels);
        histogram.record(elapsed.as_secs_f64());
        by_route.insert(route.into(), histogram);
    });
}

/// The request id of `req`, for handlers that pass it on to an upstream.
pub fn request_id(req: &HttpRequest) -> Option<String> {
    req.extensions().get::<RequestId>().map(|r| r.0.clone())
}

/// The `traceparent` a handler of `req` sends to the next service.
pub fn traceparent(req: &HttpRequest) -> Option<String> {
    req.extensions().get::<RequestTrace>().map(|trace| {
        trace
            .hop
            .get_or_init(|| trace_context::for_this_hop(&trace.span, &trace.parent))
            .clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names of this process's threads, as Linux lists them.
    fn thread_names() -> Vec<String> {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .map(|name| name.trim().to_owned())
            .collect()
    }

    fn upkeep_threads() -> usize {
        thread_names()
            .iter()
            .filter(|name| *name == METRICS_UPKEEP_THREAD)
            .count()
    }

    #[test]
    fn the_recorder_comes_with_its_upkeep_thread() {
        let handle = metrics_handle();
        // A new thread names itself once it runs: until then it shows its
        // parent's name.
        let deadline = Instant::now() + Duration::from_secs(10);
        while upkeep_threads() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(upkeep_threads(), 1, "{:?}", thread_names());
        // Installed once: a second call starts no second thread.
        let _again = metrics_handle();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(upkeep_threads(), 1, "{:?}", thread_names());
        handle.run_upkeep();
    }

    /// A service with only the common routes, running on a free port: its
    /// `host:port`, and what stops it.
    fn started() -> (String, impl Future<Output = ()>) {
        let settings = ServerSettings {
            host: "127.0.0.1".into(),
            port: 0,
            workers: 1,
            shutdown_timeout_secs: 1,
        };
        let info = ServiceInfo {
            name: "test",
            version: "0",
        };
        let listener = bind(&settings).unwrap();
        let running = serve(listener, &settings, info, Readiness::Always, |_| {}).unwrap();
        let host = format!("127.0.0.1:{}", running.port());
        let handle = running.handle();
        let server = tokio::spawn(running.run_until_stopped());
        let stop = async move {
            handle.stop(true).await;
            server.await.unwrap().unwrap();
        };
        (host, stop)
    }

    #[tokio::test]
    async fn a_service_answers_http_1_1_and_http_2_by_prior_knowledge_on_one_port() {
        let (host, stop) = started();
        let url = format!("http://{host}/health");
        let http1 = reqwest::Client::builder().http1_only().build().unwrap();
        let http2 = reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap();
        for (client, version) in [
            (&http1, reqwest::Version::HTTP_11),
            (&http2, reqwest::Version::HTTP_2),
        ] {
            let response = client.get(&url).send().await.unwrap();
            assert_eq!(response.version(), version);
            assert_eq!(response.status(), 200);
            let health: serde_json::Value = response.json().await.unwrap();
            assert_eq!(health["status"], "ok");
        }
        stop.await;
    }

    #[tokio::test]
    async fn an_upgrade_not_taken_is_answered_with_connection_close() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (host, stop) = started();
        // An upgrade the route does not take: the answer is HTTP, and the
        // connection is closed after it, so the answer must say so, or a
        // client keeps the connection for its next request and finds it
        // closed.
        let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
        let request = format!(
            "GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .expect("the connection is closed after the answer")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer).to_lowercase();
        assert!(answer.starts_with("http/1.1 200 "), "{answer}");
        assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
        stop.await;
    }

    #[test]
    fn methods_outside_the_standard_ones_share_one_label() {
        use actix_web::http::Method;
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
    }
}
