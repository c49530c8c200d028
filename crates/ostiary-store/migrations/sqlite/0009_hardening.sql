-- Hardening after an outside attack (issue 9).

-- Lost-response recovery (see ostiary-core's refresh.rs): whether the current token was
-- handed out again, and whether the previous one had been before it rotated.
ALTER TABLE refresh_families ADD COLUMN current_reissued INTEGER NOT NULL DEFAULT 0;
ALTER TABLE refresh_families ADD COLUMN previous_reissued INTEGER NOT NULL DEFAULT 0;

-- Access tokens minted from an authorization code or a refresh family, while they may be
-- valid, so that everything a replayed code issued can be revoked (RFC 9700 §4.3.1).
CREATE TABLE issued_access_tokens (
    jti        TEXT PRIMARY KEY,
    code_hash  TEXT,
    family_id  TEXT,
    expires_at INTEGER NOT NULL
);
CREATE INDEX issued_access_tokens_code ON issued_access_tokens (code_hash);
CREATE INDEX issued_access_tokens_family ON issued_access_tokens (family_id);
CREATE INDEX issued_access_tokens_expiry ON issued_access_tokens (expires_at);
