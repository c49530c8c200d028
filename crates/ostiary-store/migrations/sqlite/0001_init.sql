-- Ostiary schema, SQLite. Times are Unix seconds (INTEGER). Credentials are stored only as
-- SHA-256 hashes (base64url TEXT).

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,  -- case-insensitive, like logins
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE clients (
    id                        TEXT PRIMARY KEY,
    kind                      TEXT NOT NULL CHECK (kind IN ('confidential', 'public', 'browser')),
    secret_hash               TEXT,
    redirect_uris             TEXT NOT NULL,  -- JSON array
    post_logout_redirect_uris TEXT NOT NULL,  -- JSON array
    allowed_resources         TEXT NOT NULL,  -- JSON array; the first is the default
    extra_scopes              TEXT NOT NULL,  -- JSON array
    web_origins               TEXT NOT NULL,  -- JSON array (browser clients)
    created_at                INTEGER NOT NULL
);

CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    alg           TEXT NOT NULL,
    private_pkcs8 BLOB NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    sid          TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    cookie_hash  TEXT UNIQUE,
    auth_time    INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    ended_at     INTEGER,
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
    auth_time      INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER
);

CREATE TABLE refresh_families (
    id               TEXT PRIMARY KEY,
    sid              TEXT NOT NULL REFERENCES sessions (sid),
    client_id        TEXT NOT NULL REFERENCES clients (id),
    user_id          TEXT NOT NULL,
    scope            TEXT NOT NULL,
    resource         TEXT NOT NULL,
    generation       INTEGER NOT NULL,
    rotated_at       INTEGER NOT NULL,
    sealed_successor BLOB,
    created_at       INTEGER NOT NULL,
    ended_at         INTEGER,
    end_reason       TEXT,
    code_hash        TEXT
);
CREATE INDEX refresh_families_sid ON refresh_families (sid);
CREATE INDEX refresh_families_code ON refresh_families (code_hash);

-- Every refresh token ever issued in a family, by hash, so that an old one is recognised
-- (reuse detection) rather than merely unknown.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL REFERENCES refresh_families (id),
    generation INTEGER NOT NULL,
    UNIQUE (family_id, generation)
);

CREATE TABLE revoked_access_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
