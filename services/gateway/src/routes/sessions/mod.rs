//! `/api/v1/auth/sessions…`: a user's sessions, one per login (its refresh
//! token family): listed, and ended one at a time. Signed-in sessions only,
//! never an API key.

pub mod list;
pub mod revoke;
