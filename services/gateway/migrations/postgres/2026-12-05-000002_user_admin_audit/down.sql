DROP TABLE audit_events;
DROP FUNCTION audit_events_append_only();
ALTER TABLE users DROP COLUMN tokens_valid_after;
ALTER TABLE users DROP COLUMN disabled_at;
