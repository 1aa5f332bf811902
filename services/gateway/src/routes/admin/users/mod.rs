//! `/api/v1/admin/users…`: accounts as administrators manage them. Every
//! endpoint takes an administrator's access token (not an API key); a
//! user who is not an admin gets 403, and an admin cannot disable, demote
//! or delete her own account (409 `own_account`), so the acting admin
//! always remains one; nor reset her own password here (409 too: it would
//! end her own sessions; `POST /api/v1/auth/password` keeps this one).

pub mod budget;
pub mod delete;
pub mod get;
pub mod list;
pub mod password;
pub mod update;

use chrono::{DateTime, Utc};
use confab_protocol::auth::{AccessClaims, AuthContext, Role};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::GatewayError;
use crate::store::users::{self, UserRow};

/// A user as an admin sees her (never her password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    #[schema(value_type = Role)]
    pub role: String,
    pub disabled: bool,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub disabled_at: Option<DateTime<Utc>>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
}

impl From<UserRow> for UserView {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            username: row.username,
            role: row.role,
            disabled: row.disabled_at.is_some(),
            disabled_at: row.disabled_at.map(|at| at.and_utc()),
            created_at: row.created_at.and_utc(),
        }
    }
}

/// The acting admin, as the services are told who asks.
pub fn acting(admin: &AccessClaims) -> AuthContext {
    AuthContext {
        user_id: admin.sub.clone(),
        username: Some(admin.name.clone()),
        role: Role::Admin,
        api_key_id: None,
    }
}

/// The user `id`, or 404.
pub async fn existing(db: &confab_kit::db::Db, id: &str) -> Result<UserRow, GatewayError> {
    users::by_id(db, id)
        .await?
        .ok_or(GatewayError::UserNotFound)
}
