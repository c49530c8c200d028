-- Failed-login counters (brute-force protection), shared by every process using the database.
-- key: 'user:NAME' or 'ip:ADDRESS'; a window lasts the configured seconds from window_start.
CREATE TABLE login_failures (
    key          TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    failures     INTEGER NOT NULL
);
CREATE INDEX login_failures_window ON login_failures (window_start);
