-- Ostiary schema, PostgreSQL: the SQLite schema of migrations 0001-0006 in one step. Times are
-- Unix seconds (BIGINT). Credentials are stored only as SHA-256 hashes (base64url TEXT). Lists
-- and objects are JSON in TEXT columns, as in SQLite, so both stores parse rows alike.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL,  -- kept as first written; unique and matched case-insensitively
    password_hash TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);
-- Usernames are ASCII, so lower() folds exactly what SQLite's NOCASE folds.
CREATE UNIQUE INDEX users_username ON users (lower(username));

CREATE TABLE clients (
    id                        TEXT PRIMARY KEY,
    kind                      TEXT NOT NULL CHECK (kind IN ('confidential', 'public', 'browser')),
    secret_hash               TEXT,
    redirect_uris             TEXT NOT NULL,  -- JSON array
    post_logout_redirect_uris TEXT NOT NULL,  -- JSON array
    allowed_resources         TEXT NOT NULL,  -- JSON array; the first is the default
    extra_scopes              TEXT NOT NULL,  -- JSON array
    web_origins               TEXT NOT NULL,  -- JSON array (browser clients)
    backchannel_logout_uri    TEXT,
    policy                    TEXT NOT NULL DEFAULT '{}',  -- JSON object; '{}' follows the global policy
    created_at                BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    alg           TEXT NOT NULL,
    private_pkcs8 BYTEA NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    sid          TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    cookie_hash  TEXT UNIQUE,
    auth_time    BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    ended_at     BIGINT,
    end_reason   TEXT,
    user_agent   TEXT,
    ip           TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE authorization_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES clients (id),
    redirect_uri   TEXT NOT NULL,
    sid            TEXT NOT NULL REFERENCES sessions (sid),
    user_id        TEXT NOT NULL,
    scope          TEXT NOT NULL,
    resource       TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    nonce          TEXT,
    auth_time      BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);
-- Ending a session looks up the clients that redeemed a code in it (back-channel logout).
CREATE INDEX authorization_codes_sid ON authorization_codes (sid);

CREATE TABLE refresh_families (
    id                  TEXT PRIMARY KEY,
    sid                 TEXT NOT NULL REFERENCES sessions (sid),
    client_id           TEXT NOT NULL REFERENCES clients (id),
    user_id             TEXT NOT NULL,
    scope               TEXT NOT NULL,
    resource            TEXT NOT NULL,
    generation          BIGINT NOT NULL,
    rotated_at          BIGINT NOT NULL,
    sealed_successor    BYTEA,
    created_at          BIGINT NOT NULL,
    ended_at            BIGINT,
    end_reason          TEXT,
    code_hash           TEXT,
    last_use_ip         TEXT,  -- where the current token was issued to: evidence on reuse
    last_use_user_agent TEXT
);
CREATE INDEX refresh_families_sid ON refresh_families (sid);
CREATE INDEX refresh_families_code ON refresh_families (code_hash);

-- Every refresh token ever issued in a family, by hash, so that an old one is recognised
-- (reuse detection) rather than merely unknown.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL REFERENCES refresh_families (id),
    generation BIGINT NOT NULL,
    UNIQUE (family_id, generation)
);

CREATE TABLE revoked_access_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- The revocation feed: one entry per ended session (sid) or revoked access token (jti), in
-- order (seq). Resource servers read it from a cursor; entries matter for one access-token
-- lifetime after revoked_at, and are pruned after that. The sequence is named so that the
-- highest seq ever issued can be read after pruning; seqs are allocated under an advisory lock
-- held until commit, so that they become visible in order (see postgres.rs, `publish`).
CREATE TABLE revocations (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME revocations_seq) PRIMARY KEY,
    sid        TEXT,
    jti        TEXT,
    revoked_at BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    CHECK (sid IS NOT NULL OR jti IS NOT NULL)
);
CREATE INDEX revocations_revoked_at ON revocations (revoked_at);

-- The audit log: append-only (the store has no update or delete for it).
CREATE TABLE audit_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         BIGINT NOT NULL,
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

-- OpenID Connect Back-Channel Logout: the deliveries owed to clients. A delivery is queued in
-- the same transaction that ends a session, so it survives a restart; it is retried with
-- backoff until delivered or given up.
CREATE TABLE backchannel_deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id       TEXT NOT NULL,
    sid             TEXT NOT NULL,
    uri             TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    failed_at       BIGINT,
    last_error      TEXT
);
CREATE INDEX backchannel_due ON backchannel_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;

-- Which clients obtained tokens in which session, for the per-client session limit.
CREATE TABLE session_clients (
    sid        TEXT NOT NULL REFERENCES sessions (sid),
    client_id  TEXT NOT NULL REFERENCES clients (id),
    user_id    TEXT NOT NULL,
    first_at   BIGINT NOT NULL,
    PRIMARY KEY (sid, client_id)
);
CREATE INDEX session_clients_user_client ON session_clients (user_id, client_id);
