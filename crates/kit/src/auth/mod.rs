//! Who is calling: the "dual auth format" of DESIGN §5.

mod jwt;
mod refetch;
mod service;
mod verified;

pub use jwt::{JwtSettings, JwtVerifier, validation};
pub use refetch::RefetchGate;
pub use service::{AuthedJson, Caller, ServiceAuth, bearer_token, header};
pub use verified::VerifiedTokens;
