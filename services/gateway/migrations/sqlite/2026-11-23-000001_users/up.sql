CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    -- Stored lower-case: usernames are case-insensitive.
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE refresh_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Tokens rotated from one login share a family, revoked together on reuse.
    family_id TEXT NOT NULL,
    -- SHA-256 of the token; the token itself is never stored.
    token_hash TEXT NOT NULL UNIQUE,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    revoked_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    -- PKCS#8 DER of the Ed25519 private key, base64.
    private_key TEXT NOT NULL,
    -- The raw public key, base64url: the JWK's `x`.
    public_key TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL
);
