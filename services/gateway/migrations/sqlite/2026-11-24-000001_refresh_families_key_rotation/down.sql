DROP INDEX signing_keys_one_active;
ALTER TABLE signing_keys DROP COLUMN retired_at;
ALTER TABLE refresh_tokens ADD COLUMN revoked_at TIMESTAMP;
DROP TABLE refresh_families;
