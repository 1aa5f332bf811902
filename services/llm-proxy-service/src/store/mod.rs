//! Storage of llm-proxy-service. Handlers never build SQL; this module never
//! sees HTTP types.

pub mod llm_calls;
pub mod schema;

use confab_kit::db::Migrations;
use diesel_migrations::embed_migrations;

pub static MIGRATIONS: Migrations = Migrations {
    postgres: embed_migrations!("migrations/postgres"),
    sqlite: embed_migrations!("migrations/sqlite"),
};
