//! The gateway's own endpoints; everything else is proxied (`crate::proxy`).

pub mod admin;
pub mod api_keys;
pub mod auth;
pub mod jwks;
pub mod sessions;
