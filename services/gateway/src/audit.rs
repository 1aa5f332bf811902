//! The audit trail (issue 21): who signed in or failed to, from where; who
//! created or revoked a key, changed a password or a role, disabled,
//! enabled or deleted an account, changed a budget, rotated the signing
//! key, or read every user's data. Rows are only added (`store::audit`).
//!
//! A change and its row are written one after the other, not in one
//! transaction (the change may be another service's, such as a budget); a
//! row that cannot be written fails the request with a 500, so an action
//! is never answered as done without its row unless the database failed
//! between the two.

use actix_web::HttpRequest;
use chrono::Utc;
use confab_kit::db::DbError;
use serde_json::Value;

use crate::GatewayState;
use crate::store::audit::{self, AuditRow};

/// What happened; stored by its name (`login.succeeded`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    LoginSucceeded,
    LoginFailed,
    ApiKeyCreated,
    ApiKeyRevoked,
    /// A user changed her own password.
    PasswordChanged,
    /// An admin set a user's password.
    PasswordReset,
    RoleChanged,
    UserDisabled,
    UserEnabled,
    UserDeleted,
    BudgetChanged,
    SigningKeyRotated,
    /// An admin read every user's data (`all_users=true`).
    AllUsersRead,
}

impl Action {
    pub const ALL: [Action; 13] = [
        Action::LoginSucceeded,
        Action::LoginFailed,
        Action::ApiKeyCreated,
        Action::ApiKeyRevoked,
        Action::PasswordChanged,
        Action::PasswordReset,
        Action::RoleChanged,
        Action::UserDisabled,
        Action::UserEnabled,
        Action::UserDeleted,
        Action::BudgetChanged,
        Action::SigningKeyRotated,
        Action::AllUsersRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::LoginSucceeded => "login.succeeded",
            Action::LoginFailed => "login.failed",
            Action::ApiKeyCreated => "api_key.created",
            Action::ApiKeyRevoked => "api_key.revoked",
            Action::PasswordChanged => "password.changed",
            Action::PasswordReset => "password.reset",
            Action::RoleChanged => "user.role_changed",
            Action::UserDisabled => "user.disabled",
            Action::UserEnabled => "user.enabled",
            Action::UserDeleted => "user.deleted",
            Action::BudgetChanged => "budget.changed",
            Action::SigningKeyRotated => "signing_key.rotated",
            Action::AllUsersRead => "admin.all_users_read",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// Who did it: a signed-in user, or (a failed login) the name that was
/// tried and the account it names, if any.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub id: Option<String>,
    pub name: Option<String>,
}

impl Actor {
    pub fn user(id: &str, name: &str) -> Self {
        Self {
            id: Some(id.to_owned()),
            name: Some(name.to_owned()),
        }
    }
}

/// A username as tried at a failed login, at most this long in the trail.
const TRIED_NAME_CHARS: usize = 64;

/// Appends a row: `actor` did `action` to `target` from the request's
/// client address.
pub async fn record(
    state: &GatewayState,
    req: &HttpRequest,
    actor: Actor,
    action: Action,
    target: Option<&str>,
    detail: Value,
) -> Result<(), DbError> {
    let row = AuditRow {
        id: confab_kit::ids::new_id("aud"),
        created_at: Utc::now().naive_utc(),
        actor_id: actor.id,
        actor_name: actor
            .name
            .map(|name| name.chars().take(TRIED_NAME_CHARS).collect()),
        action: action.as_str().to_owned(),
        target_id: target.map(str::to_owned),
        ip: Some(state.limits.client_ip(req).to_string()),
        detail: detail.to_string(),
    };
    audit::insert(&state.db, &row).await
}
