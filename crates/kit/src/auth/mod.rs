//! Who is calling: the "dual auth format" of DESIGN §5.

mod jwt;
mod service;

pub use jwt::{JwtSettings, JwtVerifier};
pub use service::{AuthedJson, Caller, ServiceAuth, bearer_token, header};
