-- OpenID Connect Back-Channel Logout: a client's logout endpoint, and the deliveries owed to
-- it. A delivery is queued in the same transaction that ends a session, so it survives a
-- restart; it is retried with backoff until delivered or given up.
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;

CREATE TABLE backchannel_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id       TEXT NOT NULL,
    sid             TEXT NOT NULL,
    uri             TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    failed_at       INTEGER,
    last_error      TEXT
);
CREATE INDEX backchannel_due ON backchannel_deliveries (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
