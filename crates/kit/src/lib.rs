//! The shared runtime of every Confab service.
//!
//! A service's `main` reads its settings with [`settings::load`], starts
//! telemetry with [`telemetry::init`], opens its database with [`db::Db::connect`]
//! and serves its routes with [`server::serve`], which adds `/health`, `/ready`,
//! `/metrics`, `X-Request-Id` and the JSON error body to every app.

pub mod api;
pub mod auth;
pub mod bus;
pub mod coalesce;
pub mod db;
pub mod error;
#[cfg(feature = "testing")]
pub mod fuzz;
pub mod http_client;
pub mod ids;
pub mod lease;
pub mod rate;
pub mod secrets;
pub mod server;
pub mod settings;
pub mod slots;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trace_context;
pub mod ws_tunnel;

pub use error::{ApiError, Refusal};
