-- User administration (issue 21). A disabled account cannot sign in,
-- refresh, or use its tokens and keys; `tokens_valid_after` refuses the
-- user's access tokens issued before it (a password reset or change, a
-- role change), everywhere within seconds (src/revocations.rs).
ALTER TABLE users ADD COLUMN disabled_at TIMESTAMP;
ALTER TABLE users ADD COLUMN tokens_valid_after TIMESTAMP;

-- The audit trail: append-only. `id` is time-ordered (the page cursor);
-- no foreign key, so a deleted user's history stays.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY NOT NULL,
    created_at TIMESTAMP NOT NULL,
    -- Who did it: NULL for a failed login naming an unknown account.
    actor_id TEXT,
    actor_name TEXT,
    action TEXT NOT NULL,
    -- What it was done to (a user, a key), when not the actor.
    target_id TEXT,
    ip TEXT,
    -- A JSON object with the action's particulars.
    detail TEXT NOT NULL
);
CREATE INDEX audit_events_created ON audit_events (created_at);
CREATE INDEX audit_events_actor ON audit_events (actor_id, id);
CREATE INDEX audit_events_action ON audit_events (action, id);

-- No statement changes or removes a row, whoever sends it.
CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
