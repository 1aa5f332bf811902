//! Sockets through the gateway and dashboard-proxy: kit's WebSocket client,
//! opened with a bearer token or with a browser's handshake headers.

pub use confab_kit::testing::ws::{Frame, Ws};
use tokio_tungstenite::tungstenite::Error;

/// Opens `url` (http:// is turned into ws://) with an optional bearer token.
pub async fn try_connect(url: &str, bearer: Option<&str>) -> Result<Ws, Error> {
    let authorization = bearer.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = authorization
        .iter()
        .map(|value| ("authorization", value.as_str()))
        .collect();
    try_connect_with(url, &headers).await
}

/// Opens `url` with the given handshake headers (a browser's `Cookie` and
/// `Origin`, say).
pub async fn try_connect_with(url: &str, headers: &[(&str, &str)]) -> Result<Ws, Error> {
    Ok(confab_kit::testing::ws::open(url, headers).await?.0)
}

pub async fn connect(url: &str, bearer: Option<&str>) -> Ws {
    try_connect(url, bearer).await.unwrap()
}
