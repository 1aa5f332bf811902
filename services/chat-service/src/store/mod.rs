//! Storage of chat-service. Every query on user data is scoped by `user_id`
//! in SQL, so another user's row is simply not found.

pub mod conversations;
pub mod messages;
pub mod models;
pub mod schema;
pub mod trees;

use confab_kit::db::Migrations;
use diesel_migrations::embed_migrations;

pub static MIGRATIONS: Migrations = Migrations {
    postgres: embed_migrations!("migrations/postgres"),
    sqlite: embed_migrations!("migrations/sqlite"),
};
