//! The gateway's own routes; everything else is proxied (see `proxy`).

pub mod auth;
pub mod jwks;
