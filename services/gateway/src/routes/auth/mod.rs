//! `/api/v1/auth/…`

pub mod body;
pub mod login;
pub mod logout;
pub mod me;
pub mod refresh;
pub mod register;
pub mod tokens;
