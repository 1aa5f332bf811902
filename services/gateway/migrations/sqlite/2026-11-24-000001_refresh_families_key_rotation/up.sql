-- A refresh token family is one login's chain of rotated refresh tokens. The
-- family row is what a refresh locks and what reuse detection or a logout
-- revokes, so a rotation racing a revocation can never leave a live token
-- behind: both write this one row.
CREATE TABLE refresh_families (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX refresh_families_user ON refresh_families (user_id);

INSERT INTO refresh_families (id, user_id, created_at, last_used_at, revoked_at)
SELECT family_id, MIN(user_id), MIN(created_at), MAX(created_at), MAX(revoked_at)
FROM refresh_tokens
GROUP BY family_id;

-- Revocation now lives on the family.
ALTER TABLE refresh_tokens DROP COLUMN revoked_at;

-- When a key stopped signing; it still verifies (and is published) for as
-- long as tokens it signed can live.
ALTER TABLE signing_keys ADD COLUMN retired_at TIMESTAMP;

-- At most one signing key is active, even when two gateways start on a
-- fresh database or two rotations race: the second insert fails.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (active) WHERE active;
