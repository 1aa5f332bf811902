//! Refusing to run with development secrets (DESIGN §5).
//!
//! The built-in defaults carry secrets anyone can read in this repository
//! (the service token `confab-dev-service-token`, the agent keys
//! `confab-dev-agent-key-*`). A service holding one of them, or an empty or
//! short secret, trusts whoever can reach its port; so every service checks
//! its secrets at start-up and refuses to start unless it runs in
//! development (`CONFAB__ENV=development`, which `./start-dev.sh` and the
//! tests set).

use serde::Deserialize;

/// Where a service runs: the top-level `env` setting (`CONFAB__ENV`).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RunEnv {
    /// Anywhere real: development secrets are refused. The default, so a
    /// service nobody configured does not run open.
    #[default]
    Production,
    /// A developer's machine or a test: development secrets are accepted.
    Development,
}

/// Shortest secret accepted outside development: 32 characters, what
/// `openssl rand -hex 16` prints (128 bits).
pub const MIN_SECRET_CHARS: usize = 32;

/// Every development secret in the defaults starts with this.
const DEVELOPMENT_PREFIX: &str = "confab-dev-";

/// One secret a service holds: its setting's path (`auth.service_token`)
/// and its value.
pub struct Secret<'a> {
    pub setting: String,
    pub value: &'a str,
}

impl<'a> Secret<'a> {
    pub fn new(setting: impl Into<String>, value: &'a str) -> Self {
        Self {
            setting: setting.into(),
            value,
        }
    }
}

/// `Err` naming every secret that is a development default, empty or
/// shorter than [`MIN_SECRET_CHARS`], and the variable that sets it,
/// unless `env` is development (then a warning is logged once).
pub fn refuse_development_secrets<'a>(
    env: RunEnv,
    secrets: impl IntoIterator<Item = Secret<'a>>,
) -> anyhow::Result<()> {
    let weak: Vec<String> = secrets
        .into_iter()
        .filter_map(|secret| {
            let why = weakness(secret.value)?;
            Some(format!(
                "{} {why}: set {} to a secret of at least {MIN_SECRET_CHARS} characters",
                secret.setting,
                env_var(&secret.setting)
            ))
        })
        .collect();
    if weak.is_empty() {
        return Ok(());
    }
    match env {
        RunEnv::Development => {
            tracing::warn!(
                count = weak.len(),
                "running in development (CONFAB__ENV=development) with development secrets; \
                 never expose this service"
            );
            Ok(())
        }
        RunEnv::Production => anyhow::bail!(
            "refusing to start with development secrets ({}); to run with them on a \
             development machine, set CONFAB__ENV=development",
            weak.join("; ")
        ),
    }
}

/// Why `value` is not a secret, if it is not.
fn weakness(value: &str) -> Option<&'static str> {
    if value.trim().is_empty() {
        Some("is empty")
    } else if value.starts_with(DEVELOPMENT_PREFIX) {
        Some("is a development default, published with Confab's source")
    } else if value.chars().count() < MIN_SECRET_CHARS {
        Some("is too short")
    } else {
        None
    }
}

/// The environment variable that sets `setting`:
/// `auth.agent_keys.math` → `CONFAB__AUTH__AGENT_KEYS__MATH`.
fn env_var(setting: &str) -> String {
    format!("CONFAB__{}", setting.replace('.', "__").to_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRONG: &str = "3f9a1c0d7e5b2a4c6d8e0f1a2b3c4d5e";

    #[test]
    fn development_secrets_are_refused_outside_development_and_named() {
        for weak in [
            "confab-dev-service-token",
            "confab-dev-agent-key-math",
            "",
            "  ",
            "hunter2",
        ] {
            let err = refuse_development_secrets(
                RunEnv::Production,
                [Secret::new("auth.agent_keys.math", weak)],
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("CONFAB__AUTH__AGENT_KEYS__MATH"), "{err}");
            assert!(err.contains("CONFAB__ENV=development"), "{err}");
            assert!(
                !err.contains("hunter2"),
                "the value itself is never shown: {err}"
            );
        }
    }

    #[test]
    fn strong_secrets_start_anywhere_and_development_accepts_anything() {
        refuse_development_secrets(
            RunEnv::Production,
            [Secret::new("auth.service_token", STRONG)],
        )
        .unwrap();
        refuse_development_secrets(
            RunEnv::Development,
            [Secret::new(
                "auth.service_token",
                "confab-dev-service-token",
            )],
        )
        .unwrap();
    }
}
