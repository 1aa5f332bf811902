//! `/api/v1/api-keys…`: a user's personal API keys (see `crate::api_keys`).
//! Managed from a signed-in session only, never with a key.

pub mod create;
pub mod list;
pub mod revoke;

use serde::Serialize;
use utoipa::ToSchema;

use crate::api_keys::{Scope, Scopes};
use crate::store::api_keys::ApiKeyRow;

/// A key as lists show it: never the key itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    /// The key's first characters, to tell it by.
    pub prefix: String,
    #[schema(value_type = Vec<Scope>)]
    pub scopes: Vec<&'static str>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    /// None: it lives until revoked.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<ApiKeyRow> for KeyView {
    fn from(row: ApiKeyRow) -> Self {
        Self {
            scopes: Scopes::from_stored(&row.scopes).names(),
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            created_at: row.created_at.and_utc(),
            last_used_at: row.last_used_at.map(|at| at.and_utc()),
            expires_at: row.expires_at.map(|at| at.and_utc()),
        }
    }
}
