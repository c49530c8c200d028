-- Signing-key lifecycle: a key signs from activates_at (until a newer key of its algorithm
-- activates); before that it is only published. Existing keys signed from their creation.
ALTER TABLE signing_keys ADD COLUMN activates_at INTEGER NOT NULL DEFAULT 0;
UPDATE signing_keys SET activates_at = created_at;
