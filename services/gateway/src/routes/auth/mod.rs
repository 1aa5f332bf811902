//! `/api/v1/auth/…`

pub mod body;
pub mod login;
pub mod logout;
pub mod me;
pub mod password;
pub mod refresh;
pub mod register;
pub mod tokens;
