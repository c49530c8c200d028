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

-- Failed-login counters, one row per counter (see ostiary-core's throttle.rs): a username
-- from one address ('pair:NAME|ADDRESS'), a username ('user:NAME'), an address ('ip:ADDRESS').
-- A counter is forgotten a window after its last failure; attempts counted while it is
-- engaged are reported together (aggregated since aggregate_since, last reported at
-- reported_at).
DROP TABLE login_failures;
CREATE TABLE login_counters (
    key             TEXT PRIMARY KEY,
    username        TEXT,
    failures        INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL,
    aggregated      INTEGER NOT NULL,
    aggregate_since INTEGER NOT NULL,
    reported_at     INTEGER NOT NULL
);
CREATE INDEX login_counters_username ON login_counters (username);
CREATE INDEX login_counters_last_failure ON login_counters (last_failure_at);

-- Retention (see ostiary-core's retention.rs): one instance at a time runs each job, under a
-- lease; and the indexes its deletions and the expiry of untouched sessions need.
CREATE TABLE job_leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_ended ON sessions (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX sessions_live_last_used ON sessions (last_used_at) WHERE ended_at IS NULL;
CREATE INDEX sessions_live_created ON sessions (created_at) WHERE ended_at IS NULL;
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);
CREATE INDEX revoked_access_tokens_expiry ON revoked_access_tokens (expires_at);
CREATE INDEX backchannel_deliveries_sid ON backchannel_deliveries (sid);
CREATE INDEX backchannel_deliveries_done ON backchannel_deliveries (COALESCE(delivered_at, failed_at));

-- The revocation feed also announces withdrawn signing keys (an emergency rotation): a `kid`
-- entry. SQLite cannot change a CHECK constraint, so the table is rebuilt, keeping the highest
-- seq ever issued (pruned entries included) that AUTOINCREMENT remembers.
CREATE TABLE revocations_new (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    sid        TEXT,
    jti        TEXT,
    kid        TEXT,
    revoked_at INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    CHECK (sid IS NOT NULL OR jti IS NOT NULL OR kid IS NOT NULL)
);
INSERT INTO revocations_new (seq, sid, jti, revoked_at, reason)
    SELECT seq, sid, jti, revoked_at, reason FROM revocations;
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'revocations_new', seq FROM sqlite_sequence WHERE name = 'revocations'
    AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'revocations_new');
UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT seq FROM sqlite_sequence WHERE name = 'revocations'))
    WHERE name = 'revocations_new' AND EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'revocations');
DROP TABLE revocations;
ALTER TABLE revocations_new RENAME TO revocations;
CREATE INDEX revocations_revoked_at ON revocations (revoked_at);
