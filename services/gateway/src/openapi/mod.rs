//! The gateway's OpenAPI documents.

pub mod own;
pub mod public;
pub mod reference;
