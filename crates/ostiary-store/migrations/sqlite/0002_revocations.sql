-- The revocation feed: one entry per ended session (sid) or revoked access token (jti), in
-- order (seq). Resource servers read it from a cursor; entries matter for one access-token
-- lifetime after revoked_at, and are pruned after that.
CREATE TABLE revocations (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    sid        TEXT,
    jti        TEXT,
    revoked_at INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    CHECK (sid IS NOT NULL OR jti IS NOT NULL)
);
CREATE INDEX revocations_revoked_at ON revocations (revoked_at);
