//! Typed settings loaded with the `config` crate (DESIGN §3).
//!
//! Sources, later wins: the service's built-in defaults (a TOML document
//! compiled into the binary) → an optional TOML file (`--config PATH` or
//! `CONFAB_CONFIG`) → `CONFAB__SECTION__KEY` environment variables → the
//! conventional `DATABASE_URL` and `PORT`.

use std::path::PathBuf;

use anyhow::Context;
use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Where a service listens.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    /// 0 picks a free port (tests do this).
    pub port: u16,
    /// Worker threads; 0 means one per core.
    #[serde(default)]
    pub workers: usize,
    /// Seconds a graceful shutdown waits for in-flight requests.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout_secs: u64,
}

fn default_shutdown_timeout() -> u64 {
    30
}

/// Which database a service uses: a SQLite file path (or `sqlite://path`) or a
/// `postgres://` URL.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    #[serde(default = "default_pool_size")]
    pub max_connections: usize,
}

fn default_pool_size() -> usize {
    16
}

/// How logs are printed.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct TelemetrySettings {
    #[serde(default)]
    pub log_format: LogFormat,
    /// OTLP/HTTP endpoint; `OTEL_EXPORTER_OTLP_ENDPOINT` sets it too.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// Whether LLM spans carry the prompts and completions themselves
    /// (`gen_ai.input.messages`, `gen_ai.output.messages`). Off by default:
    /// they are the users' words, and a trace backend is rarely where those
    /// are meant to be kept.
    #[serde(default)]
    pub capture_content: bool,
}

/// The settings of one service, whose built-in defaults are a TOML document.
pub trait ServiceSettings: DeserializeOwned {
    /// The defaults, also the reference of every setting (`config/default.toml`).
    const DEFAULTS: &'static str;

    /// Defaults → file → environment (DESIGN §3).
    fn load() -> anyhow::Result<Self> {
        load_from(Self::DEFAULTS, config_file_from_args(), std::env::vars())
    }

    /// The built-in defaults alone, in development (`CONFAB__ENV=development`,
    /// so their development secrets are accepted): what tests start from.
    fn defaults() -> anyhow::Result<Self> {
        load_from(
            Self::DEFAULTS,
            None,
            [("CONFAB__ENV".to_owned(), "development".to_owned())],
        )
    }
}

/// [`load`] with its inputs spelled out, so tests need not touch the process environment.
pub fn load_from<T: DeserializeOwned>(
    defaults_toml: &str,
    file: Option<PathBuf>,
    env: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<T> {
    let env: std::collections::HashMap<String, String> = env.into_iter().collect();
    let mut builder = Config::builder().add_source(File::from_str(defaults_toml, FileFormat::Toml));
    let file = file.or_else(|| env.get("CONFAB_CONFIG").map(PathBuf::from));
    if let Some(path) = file {
        builder = builder.add_source(
            File::from(path.clone())
                .format(FileFormat::Toml)
                .required(true),
        );
    }
    // Values are parsed (`300` becomes a number, `true` a boolean): serde
    // reads settings inside tagged enums (a provider's `kind`) from a
    // buffer that no longer converts a string into the number a field wants.
    builder = builder.add_source(
        Environment::with_prefix("CONFAB")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .source(Some(env.clone().into_iter().collect())),
    );
    if let Some(url) = env.get("DATABASE_URL").filter(|v| !v.is_empty()) {
        builder = builder.set_override("database.url", url.as_str())?;
    }
    if let Some(port) = env.get("PORT").filter(|v| !v.is_empty()) {
        let port: u16 = port.parse().context("PORT must be a port number")?;
        builder = builder.set_override("server.port", port)?;
    }
    if let Some(endpoint) = env
        .get("OTEL_EXPORTER_OTLP_ENDPOINT")
        .filter(|v| !v.is_empty())
    {
        builder = builder.set_override("telemetry.otlp_endpoint", endpoint.as_str())?;
    }
    builder
        .build()
        .context("reading settings")?
        .try_deserialize()
        .context("settings are invalid")
}

/// `--config PATH` or `--config=PATH` on the command line.
fn config_file_from_args() -> Option<PathBuf> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        server: ServerSettings,
        database: DatabaseSettings,
        auth: Auth,
    }

    #[derive(Debug, Deserialize)]
    struct Auth {
        service_token: String,
    }

    const DEFAULTS: &str = r#"
        [server]
        host = "127.0.0.1"
        port = 8003
        [database]
        url = "data/chat.db"
        [auth]
        service_token = "dev"
    "#;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s: Sample = load_from(DEFAULTS, None, vars(&[])).unwrap();
        assert_eq!(s.server.port, 8003);
        assert_eq!(s.database.url, "data/chat.db");
        assert_eq!(s.database.max_connections, 16);
    }

    #[test]
    fn environment_overrides_file_and_conventional_names_win() {
        let dir = tempfile_dir();
        let path = dir.join("conf.toml");
        std::fs::write(
            &path,
            "[auth]\nservice_token = \"from-file\"\n[server]\nport = 1\n",
        )
        .unwrap();
        let s: Sample = load_from(
            DEFAULTS,
            Some(path),
            vars(&[
                ("CONFAB__AUTH__SERVICE_TOKEN", "from-env"),
                ("PORT", "9999"),
                ("DATABASE_URL", "postgres://x/y"),
            ]),
        )
        .unwrap();
        assert_eq!(s.auth.service_token, "from-env");
        assert_eq!(s.server.port, 9999);
        assert_eq!(s.database.url, "postgres://x/y");
    }

    #[test]
    fn numbers_from_the_environment_reach_settings_inside_tagged_enums() {
        #[derive(Debug, Deserialize)]
        struct WithProviders {
            providers: std::collections::BTreeMap<String, Provider>,
            auth: Auth,
        }
        #[derive(Debug, Deserialize)]
        #[serde(tag = "kind", rename_all = "lowercase")]
        enum Provider {
            Builtin { chunk_delay_ms: u64 },
        }
        let defaults = "[providers.builtin]\nkind = \"builtin\"\nchunk_delay_ms = 0\n[auth]\nservice_token = \"dev\"\n";
        let s: WithProviders = load_from(
            defaults,
            None,
            vars(&[
                ("CONFAB__PROVIDERS__BUILTIN__CHUNK_DELAY_MS", "300"),
                ("CONFAB__AUTH__SERVICE_TOKEN", "12345"),
            ]),
        )
        .unwrap();
        let Provider::Builtin { chunk_delay_ms } = &s.providers["builtin"];
        assert_eq!(*chunk_delay_ms, 300);
        assert_eq!(s.auth.service_token, "12345", "a numeric secret stays text");
    }

    #[test]
    fn a_bad_port_is_a_clear_error() {
        let err = load_from::<Sample>(DEFAULTS, None, vars(&[("PORT", "eighty")])).unwrap_err();
        assert!(format!("{err:#}").contains("PORT"));
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("confab-settings-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
