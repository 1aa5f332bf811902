//! The gateway's OpenAPI documents.

pub mod own;
