//! `/api/v1/auth/…`

pub mod login;
pub mod me;
pub mod register;
