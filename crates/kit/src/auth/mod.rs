//! Who is calling: the "dual auth format" of DESIGN §5.

mod check;
mod jwt;
mod refetch;
pub mod revocations;
mod service;
mod verified;

pub use check::TokenCheck;
pub use jwt::{JwtSettings, JwtVerifier};
pub use refetch::RefetchGate;
pub use revocations::Revocations;
pub use service::{AuthedJson, Caller, ServiceAuth, bearer_token, header, service_token_state};
use verified::VerifiedTokens;
