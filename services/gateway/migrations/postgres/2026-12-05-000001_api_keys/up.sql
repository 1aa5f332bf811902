-- Personal API keys (issue 21): `cfk_` and 43 base62 characters, 256
-- random bits. Only the key's SHA-256 is stored; a key presented is found
-- by its first characters (`prefix`, also what lists show) and its hash
-- compared in constant time. A revoked key keeps its row, refused.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    -- Comma-separated, each one of chat, llm, read.
    scopes TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    expires_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX api_keys_prefix ON api_keys (prefix);
CREATE INDEX api_keys_user ON api_keys (user_id);
