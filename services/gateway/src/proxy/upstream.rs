//! The gateway's client towards the upstream services.
//!
//! Proxied requests go through hyper's pooled HTTP/1.1 client directly. The
//! gateway first used reqwest here; profiling `infra/bench/gateway.sh` with
//! perf showed about a tenth of the gateway's CPU in reqwest's layers
//! (re-parsing each URL, redirect and retry wrappers) that a proxy does not
//! want anyway: redirects belong to the client, and a retried POST could run
//! twice. WebSocket handshakes still use reqwest, for its upgrade support
//! (`confab_kit::ws_tunnel`); they are one per connection, not per message.
//!
//! One client per actix worker: its pooled connections are driven on that
//! worker's thread, so a proxied request never waits for another thread to
//! be scheduled.

use std::time::Duration;

use actix_web::web::Bytes;
use anyhow::Context;
use futures_util::StreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A request body: empty, whole, or streamed from the client.
pub type RequestBody = BoxBody<Bytes, std::io::Error>;

#[derive(Clone)]
pub struct UpstreamClient {
    http: Client<HttpsConnector<HttpConnector>, RequestBody>,
    /// For WebSocket handshakes only.
    pub websocket: reqwest::Client,
}

impl UpstreamClient {
    pub fn new(connect_timeout: Duration) -> anyhow::Result<Self> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let http = Client::builder(TokioExecutor::new()).build(connector);
        let websocket = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .http1_only()
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .build()
            .context("building the WebSocket handshake client")?;
        Ok(Self { http, websocket })
    }

    pub async fn send(
        &self,
        request: hyper::Request<RequestBody>,
    ) -> Result<hyper::Response<Incoming>, hyper_util::client::legacy::Error> {
        self.http.request(request).await
    }
}

pub fn empty() -> RequestBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub fn whole(bytes: Bytes) -> RequestBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// A body fed chunk by chunk through `chunks`.
pub fn streamed(chunks: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>) -> RequestBody {
    let frames =
        tokio_stream::wrappers::ReceiverStream::new(chunks).map(|chunk| chunk.map(Frame::data));
    BodyExt::boxed(StreamBody::new(frames))
}
