//! Storage of the gateway: users, refresh tokens, signing keys, API keys,
//! the audit trail.

pub mod api_keys;
pub mod audit;
pub mod keys;
pub mod refresh_tokens;
pub mod schema;
pub mod users;

use confab_kit::db::Migrations;
use diesel_migrations::embed_migrations;

pub static MIGRATIONS: Migrations = Migrations {
    postgres: embed_migrations!("migrations/postgres"),
    sqlite: embed_migrations!("migrations/sqlite"),
};
