//! Password hashing with argon2id (the `argon2` crate's default: Argon2id
//! v19, m = 19 MiB, t = 2, p = 1, the OWASP baseline).
//!
//! Hashing is deliberately slow, so it runs on the blocking pool and never
//! stalls a worker.

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
    })
    .await
    .context("password hashing task")?
}

/// True when `password` matches the stored hash.
pub async fn verify(password: String, stored: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&stored)
            .map_err(|e| anyhow::anyhow!("stored hash is invalid: {e}"))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .context("password verification task")?
}

/// A hash to verify against when the user does not exist, so a login for an
/// unknown user takes as long as one with a wrong password.
pub async fn dummy_hash() -> anyhow::Result<String> {
    hash("confab-timing-equaliser".to_owned()).await
}
