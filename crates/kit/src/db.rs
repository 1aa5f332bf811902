//! One database code path over PostgreSQL and SQLite (DESIGN §4).
//!
//! DESIGN asks for `#[derive(diesel::MultiConnection)]` over the two async
//! connections. That derive only supports diesel's *sync* `Connection` in the
//! released crates (diesel 2.3, diesel-async 0.9; async support is merged
//! upstream but unreleased), so this module provides the same thing by hand:
//! [`Db`] is a pool of either backend and [`db_run!`](crate::db_run) runs one
//! block of diesel-async code against whichever connection the pool holds. A
//! query is written once and compiled for both backends, so it can only use
//! what both support.

use std::path::Path;
use std::time::Duration;

use diesel::Connection;
use diesel::migration::MigrationSource;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::{
    BuildError, Hook, HookError, Object, Pool, PoolError,
};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
use futures_util::FutureExt;

use crate::settings::DatabaseSettings;

pub type PgConn = AsyncPgConnection;
pub type SqliteConn = SyncConnectionWrapper<diesel::SqliteConnection>;

/// PRAGMAs for every SQLite connection: `busy_timeout` makes a second
/// writer wait instead of failing (first: switching to WAL itself needs the
/// lock, and failed at once with "database is locked" while another
/// connection to the file was still closing), WAL lets readers run beside
/// the one writer, and foreign keys are off by default in SQLite.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
     PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

/// How long a request waits for a pooled connection before failing.
const POOL_WAIT: Duration = Duration::from_secs(10);

/// A pooled PostgreSQL connection unused this long is tried with a round
/// trip before it is lent again (one that fails is dropped and another
/// taken): the server may have closed it meanwhile (a restart, an idle
/// timeout). One used more recently is lent as it is, so a busy service
/// does not pay a `SELECT 1` before each of its queries, which diesel-async's
/// default recycling did (issue 20: a round trip per checkout on PostgreSQL,
/// a trip through the blocking pool on SQLite). A connection that breaks
/// while lent is dropped when it comes back.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database query failed")]
    Query(#[from] diesel::result::Error),
    #[error("no database connection available: {0}")]
    Pool(#[from] PoolError),
    #[error("cannot build the database pool: {0}")]
    Build(#[from] BuildError),
    #[error("cannot open the database {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: BoxError,
    },
    #[error("migrations failed: {0}")]
    Migration(#[source] BoxError),
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl DbError {
    /// True when the query broke a UNIQUE constraint (a duplicate).
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            DbError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

/// The embedded migrations of one service, one directory per backend.
pub struct Migrations {
    pub postgres: EmbeddedMigrations,
    pub sqlite: EmbeddedMigrations,
}

/// A connection pool over either backend.
#[derive(Clone)]
pub enum Db {
    Postgres(Pool<PgConn>),
    Sqlite(Pool<SqliteConn>),
}

/// One pooled connection; use it through [`db_run!`](crate::db_run).
#[expect(
    clippy::large_enum_variant,
    reason = "lives on the stack for one query; boxing would allocate on every query"
)]
pub enum Conn {
    Postgres(Object<PgConn>),
    Sqlite(Object<SqliteConn>),
}

/// Runs `$body` with `$conn` bound to a `&mut` connection of whichever backend
/// `$db` uses. The body is compiled once per backend. Evaluates to the body's
/// value; getting the connection fails with [`DbError`] through `?`.
///
/// ```text
/// let n: i64 = db_run!(db, |conn| users::table.count().get_result(conn).await)?;
/// ```
#[macro_export]
macro_rules! db_run {
    ($db:expr, |$conn:ident| $body:expr) => {
        match $db.get().await {
            Err(err) => Err(err.into()),
            Ok($crate::db::Conn::Postgres(mut pooled)) => {
                let $conn = &mut *pooled;
                $body
            }
            Ok($crate::db::Conn::Sqlite(mut pooled)) => {
                let $conn = &mut *pooled;
                $body
            }
        }
    };
}

impl Db {
    /// The database's name in the OpenTelemetry conventions
    /// (`db.system.name`).
    pub fn system(&self) -> &'static str {
        match self {
            Db::Postgres(_) => "postgresql",
            Db::Sqlite(_) => "sqlite",
        }
    }

    /// A span for a database operation that belongs in a request's trace
    /// (the rows a user is waiting for), named and attributed as the
    /// OpenTelemetry database conventions have it: `{operation} {table}`,
    /// a client span, `db.system.name`, `db.operation.name`,
    /// `db.collection.name`. Instrument the operation's future with it.
    pub fn span(&self, operation: &'static str, table: &'static str) -> tracing::Span {
        tracing::info_span!(
            "db",
            otel.name = %format_args!("{operation} {table}"),
            otel.kind = "client",
            db.system.name = self.system(),
            db.operation.name = operation,
            db.collection.name = table,
        )
    }

    /// Opens the pool, creating the SQLite file (and its folder) if needed, and
    /// runs the pending migrations.
    pub async fn connect(
        settings: &DatabaseSettings,
        migrations: &'static Migrations,
    ) -> Result<Db, DbError> {
        let url = settings.url.trim();
        let db = if is_postgres(url) {
            run_postgres_migrations(url, &migrations.postgres).await?;
            let mut config = ManagerConfig::<PgConn>::default();
            config.recycling_method = RecyclingMethod::Fast;
            let manager = AsyncDieselConnectionManager::<PgConn>::new_with_config(url, config);
            let pool = Pool::builder(manager)
                .max_size(settings.max_connections.max(1))
                .wait_timeout(Some(POOL_WAIT))
                .runtime(deadpool_runtime())
                .pre_recycle(Hook::async_fn(|conn: &mut PgConn, metrics| {
                    let idle = metrics.last_used() >= IDLE_BEFORE_PING;
                    Box::pin(async move {
                        if idle {
                            diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("1"))
                                .get_result::<i32>(conn)
                                .await
                                .map_err(|err| HookError::Message(err.to_string().into()))?;
                        }
                        Ok(())
                    })
                }))
                .build()?;
            Db::Postgres(pool)
        } else {
            let path = sqlite_path(url).to_owned();
            if let Some(parent) = Path::new(&path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent).map_err(|e| DbError::Connect {
                    url: path.clone(),
                    source: e.into(),
                })?;
            }
            run_sqlite_migrations(&path, &migrations.sqlite).await?;
            let mut config = ManagerConfig::<SqliteConn>::default();
            // A file does not go away under an open connection.
            config.recycling_method = RecyclingMethod::Fast;
            config.custom_setup = Box::new(|url| {
                async move {
                    let mut conn = SqliteConn::establish(url).await?;
                    conn.batch_execute(SQLITE_PRAGMAS)
                        .await
                        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                    Ok(conn)
                }
                .boxed()
            });
            let manager = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(path, config);
            let pool = Pool::builder(manager)
                .max_size(settings.max_connections.max(1))
                .wait_timeout(Some(POOL_WAIT))
                .runtime(deadpool_runtime())
                .build()?;
            Db::Sqlite(pool)
        };
        db.ping().await?;
        Ok(db)
    }

    pub async fn get(&self) -> Result<Conn, DbError> {
        match self {
            Db::Postgres(pool) => pool.get().await.map(Conn::Postgres).map_err(DbError::from),
            Db::Sqlite(pool) => pool.get().await.map(Conn::Sqlite).map_err(DbError::from),
        }
    }

    /// Readiness: a round trip to the database.
    pub async fn ping(&self) -> Result<(), DbError> {
        let one: Result<i32, DbError> = db_run!(self, |conn| {
            diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("1"))
                .get_result::<i32>(conn)
                .await
                .map_err(DbError::from)
        });
        one.map(|_| ())
    }
}

/// The database a URL names, with any password hidden, for start-up logs.
pub fn describe(url: &str) -> String {
    if is_postgres(url) {
        match url.split_once('@') {
            Some((creds, rest)) => {
                let scheme_end = creds.find("://").map(|i| i + 3).unwrap_or(0);
                let user = creds[scheme_end..].split(':').next().unwrap_or("");
                format!("{}{user}:***@{rest}", &creds[..scheme_end])
            }
            None => url.to_owned(),
        }
    } else {
        format!("sqlite:{}", sqlite_path(url))
    }
}

pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn sqlite_path(url: &str) -> &str {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url)
}

/// Pool timeouts need to know the runtime they run on.
fn deadpool_runtime() -> deadpool::Runtime {
    deadpool::Runtime::Tokio1
}

/// Lends a service's `static` migrations to diesel, which wants them by value.
struct Source(&'static EmbeddedMigrations);

impl<DB: diesel::backend::Backend> MigrationSource<DB> for Source {
    fn migrations(
        &self,
    ) -> diesel::migration::Result<Vec<Box<dyn diesel::migration::Migration<DB>>>> {
        MigrationSource::<DB>::migrations(self.0)
    }
}

async fn run_sqlite_migrations(
    path: &str,
    migrations: &'static EmbeddedMigrations,
) -> Result<(), DbError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn =
            diesel::SqliteConnection::establish(&path).map_err(|e| DbError::Connect {
                url: path.clone(),
                source: e.into(),
            })?;
        diesel::connection::SimpleConnection::batch_execute(&mut conn, SQLITE_PRAGMAS)?;
        // In one IMMEDIATE transaction, which takes the file's write lock
        // at once: processes starting at once on one file take turns (the
        // busy timeout waits), and the later ones find nothing pending.
        conn.immediate_transaction(|conn| {
            conn.run_pending_migrations(Source(migrations))
                .map(|_| ())
                .map_err(DbError::Migration)
        })
    })
    .await
    .map_err(|e| DbError::Migration(e.into()))?
}

/// The advisory lock the services' migrations take on PostgreSQL: any
/// number fixed for Confab (its letters' bytes).
const MIGRATION_LOCK: i64 = 0x636f_6e66_6162;

async fn run_postgres_migrations(
    url: &str,
    migrations: &'static EmbeddedMigrations,
) -> Result<(), DbError> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn =
            <AsyncConnectionWrapper<PgConn> as Connection>::establish(&url).map_err(|e| {
                DbError::Connect {
                    url: describe(&url),
                    source: e.into(),
                }
            })?;
        // Instances starting at once on one database would each run the
        // same migrations and all but one fail (two creates of one type or
        // table); a lock makes them take turns, and the later ones find
        // nothing pending. Session-level: it goes with the connection.
        diesel::RunQueryDsl::execute(
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")),
            &mut conn,
        )
        .map_err(|e| DbError::Migration(e.into()))?;
        conn.run_pending_migrations(Source(migrations))
            .map(|_| ())
            .map_err(DbError::Migration)
    })
    .await
    .map_err(|e| DbError::Migration(e.into()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            describe("postgres://confab:secret@db:5432/chat_db"),
            "postgres://confab:***@db:5432/chat_db"
        );
        assert_eq!(describe("data/chat.db"), "sqlite:data/chat.db");
        assert_eq!(describe("sqlite://data/x.db"), "sqlite:data/x.db");
    }
}
