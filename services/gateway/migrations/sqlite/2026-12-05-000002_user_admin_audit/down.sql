DROP TABLE audit_events;
ALTER TABLE users DROP COLUMN tokens_valid_after;
ALTER TABLE users DROP COLUMN disabled_at;
