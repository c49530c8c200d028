-- Failed-login counters (brute-force protection), shared by every instance.
-- key: 'user:NAME' or 'ip:ADDRESS'; a window lasts the configured seconds from window_start.
CREATE TABLE login_failures (
    key          TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    failures     BIGINT NOT NULL
);
CREATE INDEX login_failures_window ON login_failures (window_start);

-- Signing-key lifecycle: a key signs from activates_at (until a newer key of its algorithm
-- activates); before that it is only published.
ALTER TABLE signing_keys ADD COLUMN activates_at BIGINT;
UPDATE signing_keys SET activates_at = created_at;
ALTER TABLE signing_keys ALTER COLUMN activates_at SET NOT NULL;
