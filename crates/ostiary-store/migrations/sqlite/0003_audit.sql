-- The audit log: append-only (the store has no update or delete for it).
CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    user_id    TEXT,
    sid        TEXT,
    client_id  TEXT,
    ip         TEXT,
    user_agent TEXT,
    details    TEXT NOT NULL  -- JSON object
);
CREATE INDEX audit_events_user ON audit_events (user_id, at);
CREATE INDEX audit_events_sid ON audit_events (sid);
CREATE INDEX audit_events_at ON audit_events (at);
