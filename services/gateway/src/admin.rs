//! The administrator bootstrapped from configuration.
//!
//! With `[admin] username` set, start-up makes sure that user exists with
//! the `admin` role: created with `[admin] password` when missing. An
//! existing account of that name that is not an admin is promoted only with
//! `[admin] promote_existing = true`; otherwise start-up fails. Anyone may
//! register a free username, so whoever registered `admin` before the
//! operator configured it would otherwise become admin, with their own
//! password, at the next restart. An existing user's password is left
//! alone, so the configured one is only the first password (change it
//! afterwards; keep it in `CONFAB__ADMIN__PASSWORD`, not in a file).

use anyhow::Context;
use confab_kit::db::Db;
use confab_protocol::auth::Role;
use serde::Deserialize;

use crate::domain::{Password, Username};
use crate::passwords;
use crate::store::users::{self, UserRow};

#[derive(Clone, Default, Deserialize)]
pub struct AdminSettings {
    /// Empty: no admin is bootstrapped.
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// Promote an existing non-admin account of that name instead of
    /// refusing to start.
    #[serde(default)]
    pub promote_existing: bool,
}

impl std::fmt::Debug for AdminSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSettings")
            .field("username", &self.username)
            .field("password", &"***")
            .field("promote_existing", &self.promote_existing)
            .finish()
    }
}

pub async fn bootstrap(
    db: &Db,
    settings: &AdminSettings,
    passwords: &passwords::Hasher,
) -> anyhow::Result<()> {
    if settings.username.trim().is_empty() {
        return Ok(());
    }
    let username = Username::parse(settings.username.trim())
        .map_err(|e| anyhow::anyhow!("[admin] username: {}", e))?;
    let admin = Role::Admin.as_str();
    if let Some(user) = users::by_username(db, username.as_str()).await? {
        if user.role != admin {
            anyhow::ensure!(
                settings.promote_existing,
                "[admin] username '{}' names an existing account that is not an admin; \
                 it is not promoted silently, since anyone may have registered that name. \
                 Configure another username, or set [admin] promote_existing = true \
                 (CONFAB__ADMIN__PROMOTE_EXISTING=true) if that account is the operator's",
                user.username
            );
            users::set_role(db, &user.id, admin).await?;
            tracing::info!(username = %user.username, "promoted the configured user to admin");
        }
        return Ok(());
    }
    let password = Password::parse(settings.password.clone())
        .map_err(|e| anyhow::anyhow!("[admin] password (CONFAB__ADMIN__PASSWORD): {}", e))?;
    let row = UserRow::new(
        username.as_str().to_owned(),
        passwords.hash(password.into_string()).await?,
        admin,
    );
    match users::insert(db, &row).await {
        Ok(()) => {
            tracing::info!(username = %row.username, "created the configured admin");
            Ok(())
        }
        // Another gateway on the same database created it first.
        Err(err) if err.is_unique_violation() => Ok(()),
        Err(err) => Err(err).context("creating the configured admin"),
    }
}
