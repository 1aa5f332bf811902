-- One database per service (DESIGN.md §1, §4). The postgres image runs this
-- once, from /docker-entrypoint-initdb.d, when its data volume is empty; the
-- databases belong to POSTGRES_USER (confab in docker-compose.dev.yml). Each
-- service creates its own tables with its embedded migrations at start-up.
--
-- For a server of your own: psql -U postgres -f init-db.sql
CREATE DATABASE gateway_db;
CREATE DATABASE chat_db;
CREATE DATABASE llm_proxy_db;
