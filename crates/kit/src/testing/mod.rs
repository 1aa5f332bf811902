//! Helpers for integration tests (feature `testing`): a fresh database per
//! test and logs only when `TEST_LOG` is set.
//!
//! By default each test gets a new SQLite file in a temporary folder. When
//! `CONFAB_TEST_DATABASE_URL` names a PostgreSQL server (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`), each test gets a new
//! database on it instead, dropped when the test ends.

pub mod nats;
pub mod openapi;
pub mod ws;

use std::sync::Once;

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

use crate::settings::DatabaseSettings;

/// Environment variable naming the PostgreSQL server tests run against.
pub const TEST_DATABASE_ENV: &str = "CONFAB_TEST_DATABASE_URL";

/// A database that exists for the life of one test.
pub struct TestDatabase {
    pub settings: DatabaseSettings,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A fresh, empty database for the service `name` (used in the file or
    /// database name, to tell them apart when debugging).
    pub async fn new(name: &str) -> anyhow::Result<Self> {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        match std::env::var(TEST_DATABASE_ENV)
            .ok()
            .filter(|v| !v.is_empty())
        {
            Some(admin_url) => {
                let db_name = format!("confab_test_{}_{}", name.replace('-', "_"), &suffix[..12]);
                let mut admin = AsyncPgConnection::establish(&admin_url).await?;
                admin
                    .batch_execute(&format!("CREATE DATABASE \"{db_name}\""))
                    .await?;
                let url = replace_database(&admin_url, &db_name);
                Ok(Self {
                    settings: DatabaseSettings {
                        url,
                        max_connections: 8,
                    },
                    cleanup: Cleanup::Postgres {
                        admin_url,
                        name: db_name,
                    },
                })
            }
            None => {
                let dir = tempfile::Builder::new().prefix("confab-test-").tempdir()?;
                let path = dir.path().join(format!("{name}.db"));
                Ok(Self {
                    settings: DatabaseSettings {
                        url: path.to_string_lossy().into_owned(),
                        max_connections: 8,
                    },
                    cleanup: Cleanup::Sqlite(dir),
                })
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            // Drop runs outside any async context guarantee, so use a thread
            // with its own small runtime. Best effort: a leftover test
            // database is harmless.
            let admin_url = admin_url.clone();
            let name = name.clone();
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    if let Ok(mut admin) = AsyncPgConnection::establish(&admin_url).await {
                        let _ = admin
                            .batch_execute(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

/// `postgres://user@host:port/old?x` → `postgres://user@host:port/new?x`.
fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

/// What one test started: the services it spawned and the databases they
/// use, which live as long as the `Stack` (on PostgreSQL each is dropped
/// when it goes). Services start with their own crate's `testing::start`,
/// which takes the stack so the test holds one value, not a list of
/// databases beside its clients.
pub struct Stack {
    databases: Vec<TestDatabase>,
    /// The NATS server and namespace of the stack's services, once one
    /// asked for a bus with `CONFAB_TEST_NATS_URL` set.
    nats: Option<(String, String)>,
}

impl Stack {
    pub fn new() -> Self {
        init_test_tracing();
        Self {
            databases: Vec::new(),
            nats: None,
        }
    }

    /// The bus of a service of this stack: in-process, or, when
    /// `CONFAB_TEST_NATS_URL` names a NATS server, a namespace of the
    /// stack's own there (every instance of the stack shares it), whose
    /// streams go when the stack does.
    pub fn bus(&mut self) -> crate::bus::BusSettings {
        let Ok(url) = std::env::var(crate::bus::TEST_NATS_ENV) else {
            return crate::bus::BusSettings::default();
        };
        let (url, namespace) = self
            .nats
            .get_or_insert_with(|| (url, format!("t{}", uuid::Uuid::new_v4().simple())))
            .clone();
        crate::bus::BusSettings {
            url: Some(url),
            namespace,
            ..crate::bus::BusSettings::default()
        }
    }

    /// A fresh database for `service`, owned by the stack.
    pub async fn database(&mut self, service: &str) -> anyhow::Result<DatabaseSettings> {
        let database = TestDatabase::new(service).await?;
        let settings = database.settings.clone();
        self.databases.push(database);
        Ok(settings)
    }

    /// Runs `server` until the test's runtime ends; its URL.
    pub fn spawn(&mut self, server: crate::server::Running) -> String {
        let url = format!("http://127.0.0.1:{}", server.port());
        tokio::spawn(server.run_until_stopped());
        url
    }
}

impl Drop for Stack {
    /// Removes the stack's streams from the test NATS server. On a thread of
    /// its own: a drop cannot wait, and the test's runtime may be gone.
    fn drop(&mut self) {
        let Some((url, namespace)) = self.nats.take() else {
            return;
        };
        let removed = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let timeout = std::time::Duration::from_secs(5);
                let bus = crate::bus::NatsBus::connect(&url, &namespace, timeout).await?;
                bus.remove_namespace().await?;
                anyhow::Ok(())
            })
        })
        .join();
        if !matches!(removed, Ok(Ok(()))) {
            eprintln!("a test stack's NATS streams were not removed: {removed:?}");
        }
    }
}

impl Default for Stack {
    fn default() -> Self {
        Self::new()
    }
}

/// Installs a test subscriber printing logs, only when `TEST_LOG` is set.
pub fn init_test_tracing() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug")),
                )
                .with_test_writer()
                .try_init();
        }
    });
}

/// The `/metrics` page (Prometheus text) of the service at `base_url`, with
/// `service_token` sent where the service asks for one (the gateway does).
#[expect(
    clippy::unwrap_used,
    reason = "a test helper: an unexpected error fails the test loudly"
)]
pub async fn metrics_page(
    http: &reqwest::Client,
    base_url: &str,
    service_token: Option<&str>,
) -> String {
    let mut request = http.get(format!("{base_url}/metrics"));
    if let Some(token) = service_token {
        request = request.header(confab_protocol::auth::SERVICE_TOKEN_HEADER, token);
    }
    request.send().await.unwrap().text().await.unwrap()
}

/// The JSON a service answers to a GET of `url` asked as the services ask:
/// with the service token and the user's id (`X-User-Id`).
#[expect(
    clippy::unwrap_used,
    reason = "a test helper: an unexpected error fails the test loudly"
)]
pub async fn get_as_service(
    http: &reqwest::Client,
    url: &str,
    service_token: &str,
    user_id: &str,
) -> serde_json::Value {
    http.get(url)
        .header(confab_protocol::auth::SERVICE_TOKEN_HEADER, service_token)
        .header(confab_protocol::auth::USER_ID_HEADER, user_id)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Asserts that `response` is a 200 whose body streams server-sent events.
#[expect(
    clippy::unwrap_used,
    reason = "a test helper: an unexpected error fails the test loudly"
)]
pub fn assert_event_stream(response: &reqwest::Response) {
    assert_eq!(response.status(), 200);
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap();
    assert!(
        content_type.starts_with("text/event-stream"),
        "content-type {content_type}"
    );
}

/// The value of the unlabelled metric `name` in a `/metrics` page
/// (Prometheus text), when it is listed.
pub fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced_and_query_kept() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            replace_database("postgres://u:p@h/db?sslmode=disable", "t2"),
            "postgres://u:p@h/t2?sslmode=disable"
        );
    }
}
