//! `/api/v1/admin/…`: administrators only.

pub mod signing_keys;
