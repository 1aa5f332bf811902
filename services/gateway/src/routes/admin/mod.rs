//! `/api/v1/admin/…`: administrators only.

pub mod audit;
pub mod signing_keys;
pub mod users;
