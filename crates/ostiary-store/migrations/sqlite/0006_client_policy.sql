-- Per-client overrides of the session policy (JSON object; '{}' follows the global policy),
-- and which clients obtained tokens in which session, for the per-client session limit.
ALTER TABLE clients ADD COLUMN policy TEXT NOT NULL DEFAULT '{}';

CREATE TABLE session_clients (
    sid        TEXT NOT NULL REFERENCES sessions (sid),
    client_id  TEXT NOT NULL REFERENCES clients (id),
    user_id    TEXT NOT NULL,
    first_at   INTEGER NOT NULL,
    PRIMARY KEY (sid, client_id)
);
CREATE INDEX session_clients_user_client ON session_clients (user_id, client_id);
