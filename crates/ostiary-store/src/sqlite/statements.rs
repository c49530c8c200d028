//! SQLite's text of the statements the shared store methods run ([`crate::methods`]).
//! Parameters are `?` (in the order the method binds them) or `?N` where one is used twice.
//! Lists are JSON arrays, read with `json_each`. No lock statements: every transaction is
//! `BEGIN IMMEDIATE`, which holds the database's write lock throughout.

use std::sync::LazyLock;

use crate::rows::FAMILY_COLUMNS;
use crate::sql::{Statements, built};

/// Active sessions where `$where` holds, newest first, with the clients holding refresh
/// tokens in each.
macro_rules! active_sessions {
    ($where:literal) => {
        concat!(
            "SELECT s.*, (SELECT json_group_array(client_id) FROM (SELECT DISTINCT f.client_id \
             FROM refresh_families f WHERE f.sid = s.sid AND f.ended_at IS NULL ORDER BY f.client_id)) AS clients \
             FROM sessions s WHERE ",
            $where,
            " AND s.ended_at IS NULL ORDER BY s.created_at DESC, s.sid"
        )
    };
}

/// The newest audit events where `$driving` (the condition whose index finds them) and the
/// filters that are not NULL hold, oldest first.
macro_rules! audit_events {
    ($driving:literal) => {
        concat!(
            "SELECT * FROM (SELECT * FROM audit_events WHERE ",
            $driving,
            " AND (?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR sid = ?2) AND (?3 IS NULL OR kind = ?3) \
             AND (?4 IS NULL OR at >= ?4) AND (?5 IS NULL OR at < ?5) ORDER BY id DESC LIMIT ?6) ORDER BY id"
        )
    };
}

pub(crate) static SQL: LazyLock<Statements> = LazyLock::new(|| Statements {
    insert_user: "INSERT INTO users (id, username, password_hash, disabled, created_at) VALUES (?, ?, ?, ?, ?)",
    find_user: "SELECT * FROM users WHERE id = ?",
    find_user_by_username: "SELECT * FROM users WHERE username = ?",
    list_users: "SELECT * FROM users ORDER BY username",
    update_user_disabled: "UPDATE users SET disabled = ? WHERE username = ?",
    update_user_password: "UPDATE users SET password_hash = ? WHERE id = ?",
    insert_client: "INSERT INTO clients (id, kind, secret_hash, redirect_uris, post_logout_redirect_uris, allowed_resources, \
        extra_scopes, web_origins, backchannel_logout_uri, policy, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    find_client: "SELECT * FROM clients WHERE id = ?",
    list_clients: "SELECT * FROM clients ORDER BY id",
    update_client_policy: "UPDATE clients SET policy = ? WHERE id = ?",
    notify_client_changed: None,

    list_signing_keys: "SELECT kid, alg, private_pkcs8, created_at, activates_at FROM signing_keys \
        ORDER BY activates_at, created_at",
    insert_signing_key: "INSERT INTO signing_keys (kid, alg, private_pkcs8, created_at, activates_at) VALUES (?, ?, ?, ?, ?)",
    lock_signing_keys: None,
    pending_signing_key: "SELECT 1 FROM signing_keys WHERE alg = ? AND activates_at > ?",
    upsert_signing_key: "INSERT INTO signing_keys (kid, alg, private_pkcs8, created_at, activates_at) VALUES (?, ?, ?, ?, ?) \
        ON CONFLICT (kid) DO UPDATE SET private_pkcs8 = excluded.private_pkcs8",
    delete_signing_key: "DELETE FROM signing_keys WHERE kid = ?",

    lock_user: None,
    live_sessions_of_user: "SELECT sid FROM sessions WHERE user_id = ? AND ended_at IS NULL AND last_used_at > ? \
        AND created_at > ? ORDER BY created_at DESC, sid",
    insert_session: "INSERT INTO sessions (sid, user_id, cookie_hash, auth_time, created_at, last_used_at, ended_at, \
        end_reason, user_agent, ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    session_client_known: "SELECT 1 FROM session_clients WHERE sid = ? AND client_id = ?",
    live_sessions_of_user_with_client: "SELECT s.sid FROM session_clients sc JOIN sessions s ON s.sid = sc.sid \
        WHERE sc.user_id = ? AND sc.client_id = ? AND s.sid <> ? AND s.ended_at IS NULL \
        AND s.last_used_at > ? AND s.created_at > ? ORDER BY s.created_at DESC, s.sid",
    insert_session_client: "INSERT INTO session_clients (sid, client_id, user_id, first_at) VALUES (?, ?, ?, ?) \
        ON CONFLICT (sid, client_id) DO NOTHING",
    find_session: "SELECT * FROM sessions WHERE sid = ?",
    find_session_by_cookie: "SELECT * FROM sessions WHERE cookie_hash = ?",
    touch_session: "UPDATE sessions SET last_used_at = MAX(last_used_at, ?) WHERE sid = ? AND ended_at IS NULL",
    end_session: "UPDATE sessions SET ended_at = ?, end_reason = ? WHERE sid = ? AND ended_at IS NULL RETURNING user_id",
    end_families_of_session: "UPDATE refresh_families SET ended_at = ?, end_reason = ? WHERE sid = ? AND ended_at IS NULL",
    queue_backchannel_logouts: "INSERT INTO backchannel_deliveries (client_id, sid, uri, next_attempt_at, created_at) \
        SELECT c.id, ?1, c.backchannel_logout_uri, ?2, ?2 FROM clients c \
        WHERE c.backchannel_logout_uri IS NOT NULL \
        AND c.id IN (SELECT client_id FROM session_clients WHERE sid = ?1 \
        UNION SELECT client_id FROM authorization_codes WHERE sid = ?1 AND used_at IS NOT NULL)",
    sessions_of_user: "SELECT sid FROM sessions WHERE user_id = ? AND ended_at IS NULL ORDER BY created_at, sid",
    list_active_sessions: active_sessions!("TRUE"),
    list_active_sessions_of_user: active_sessions!("s.user_id = ?1"),
    list_expired_sessions: "SELECT * FROM sessions WHERE ended_at IS NULL AND (last_used_at <= ? OR created_at <= ?) \
        ORDER BY last_used_at LIMIT ?",

    insert_authorization_code: "INSERT INTO authorization_codes (code_hash, client_id, redirect_uri, sid, user_id, scope, \
        resource, code_challenge, nonce, auth_time, created_at, expires_at, dpop_jkt) \
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    consume_authorization_code: "UPDATE authorization_codes SET used_at = ? \
        WHERE code_hash = ? AND client_id = ? AND used_at IS NULL RETURNING *",
    find_authorization_code: "SELECT * FROM authorization_codes WHERE code_hash = ?",
    insert_refresh_family: "INSERT INTO refresh_families (id, sid, client_id, user_id, scope, resource, generation, \
        rotated_at, sealed_successor, created_at, ended_at, end_reason, code_hash, last_use_ip, last_use_user_agent, \
        dpop_jkt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    insert_refresh_token: "INSERT INTO refresh_tokens (token_hash, family_id, generation) VALUES (?, ?, ?)",
    find_refresh_token: built(format!(
        "SELECT {FAMILY_COLUMNS}, t.generation AS token_generation FROM refresh_tokens t \
         JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = ?"
    )),
    find_refresh_family: built(format!(
        "SELECT {FAMILY_COLUMNS} FROM refresh_families f WHERE f.id = ?"
    )),
    mark_successor_reissued: "UPDATE refresh_families SET current_reissued = TRUE \
        WHERE id = ? AND generation = ? AND ended_at IS NULL",
    end_refresh_family: "UPDATE refresh_families SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL \
        RETURNING sid, client_id",
    forget_session_client: "DELETE FROM session_clients WHERE sid = ?1 AND client_id = ?2 AND NOT EXISTS \
        (SELECT 1 FROM refresh_families WHERE sid = ?1 AND client_id = ?2 AND ended_at IS NULL)",
    use_dpop_proof: "INSERT INTO dpop_proofs (jkt, jti_hash, expires_at) VALUES (?1, ?2, ?3) \
        ON CONFLICT (jkt, jti_hash) DO UPDATE SET expires_at = excluded.expires_at \
        WHERE dpop_proofs.expires_at < ?4",
    insert_revoked_access_token: "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES (?, ?) \
        ON CONFLICT (jti) DO NOTHING",
    // The transaction holds the database's write lock: seqs are allocated in commit order.
    lock_feed: None,
    append_revocation: "INSERT INTO revocations (sid, jti, kid, revoked_at, reason) VALUES (?, ?, ?, ?, ?)",
    notify_feed: None,
    is_access_token_revoked: "SELECT 1 FROM revoked_access_tokens WHERE jti = ?",
    list_revocations: "SELECT seq, sid, jti, kid, revoked_at, reason FROM revocations \
        WHERE seq > ? AND revoked_at >= ? ORDER BY seq LIMIT ?",

    claim_backchannel_deliveries: "UPDATE backchannel_deliveries SET next_attempt_at = ?1 + ?2 \
        WHERE id IN (SELECT id FROM backchannel_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL \
        AND next_attempt_at <= ?1 ORDER BY next_attempt_at LIMIT ?3) RETURNING *",
    backchannel_delivered: "UPDATE backchannel_deliveries SET attempts = attempts + 1, delivered_at = ?, \
        last_error = NULL WHERE id = ?",
    backchannel_retry: "UPDATE backchannel_deliveries SET attempts = attempts + 1, next_attempt_at = ?, \
        last_error = ? WHERE id = ?",
    backchannel_gave_up: "UPDATE backchannel_deliveries SET attempts = attempts + 1, failed_at = ?, \
        last_error = ? WHERE id = ?",
    list_undelivered_backchannel: "SELECT * FROM backchannel_deliveries WHERE delivered_at IS NULL ORDER BY id",

    insert_audit_event: "INSERT INTO audit_events (at, kind, actor, user_id, sid, client_id, ip, user_agent, details) \
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    list_audit_events_of_user: audit_events!("user_id = ?1"),
    list_audit_events_of_session: audit_events!("sid = ?2"),
    list_audit_events: audit_events!("TRUE"),

    ensure_login_counter: "INSERT INTO login_counters (key, username, failures, last_failure_at, aggregated, \
        aggregate_since, reported_at) VALUES (?, ?, 0, 0, 0, 0, 0) ON CONFLICT (key) DO NOTHING",
    lock_login_counter: "SELECT failures, last_failure_at, aggregated, aggregate_since, reported_at \
        FROM login_counters WHERE key = ?",
    update_login_counter: "UPDATE login_counters SET failures = ?2, last_failure_at = ?3, aggregated = ?4, \
        aggregate_since = ?5, reported_at = ?6 WHERE key = ?1",
    lock_login_counters: None,
    delete_login_counter: "DELETE FROM login_counters WHERE key = ?",
    decrement_login_counter: "UPDATE login_counters SET failures = MAX(failures - 1, 0), \
        aggregated = MAX(aggregated - ?, 0) WHERE key = ?",
    clear_login_counters: "DELETE FROM login_counters WHERE username = ?",
    expired_login_counters: "SELECT key, failures, last_failure_at, aggregated, aggregate_since, reported_at \
        FROM login_counters WHERE last_failure_at <= ? LIMIT ?",
    delete_login_counters: "DELETE FROM login_counters WHERE key IN (SELECT value FROM json_each(?))",

    claim_job: "INSERT INTO job_leases (name, holder, expires_at) VALUES (?1, ?2, ?3) \
        ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
        WHERE job_leases.expires_at <= ?4 OR job_leases.holder = excluded.holder",
    ended_sessions: "SELECT sid FROM sessions WHERE ended_at < ? ORDER BY ended_at LIMIT ?",
    prune_sessions: [
        "DELETE FROM issued_access_tokens WHERE family_id IN \
         (SELECT id FROM refresh_families WHERE sid IN (SELECT value FROM json_each(?1))) \
         OR code_hash IN (SELECT code_hash FROM authorization_codes \
         WHERE sid IN (SELECT value FROM json_each(?1)))",
        "DELETE FROM refresh_tokens WHERE family_id IN \
         (SELECT id FROM refresh_families WHERE sid IN (SELECT value FROM json_each(?)))",
        "DELETE FROM refresh_families WHERE sid IN (SELECT value FROM json_each(?))",
        "DELETE FROM authorization_codes WHERE sid IN (SELECT value FROM json_each(?))",
        "DELETE FROM session_clients WHERE sid IN (SELECT value FROM json_each(?))",
        "DELETE FROM backchannel_deliveries WHERE sid IN (SELECT value FROM json_each(?)) \
         AND (delivered_at IS NOT NULL OR failed_at IS NOT NULL)",
        "DELETE FROM sessions WHERE sid IN (SELECT value FROM json_each(?))",
    ],
    prune_audit_events: "DELETE FROM audit_events WHERE id IN \
        (SELECT id FROM audit_events ORDER BY id LIMIT ?2) AND at < ?1",
    prune_authorization_codes: "DELETE FROM authorization_codes WHERE code_hash IN \
        (SELECT code_hash FROM authorization_codes WHERE expires_at < ? LIMIT ?)",
    prune_issued_access_tokens: "DELETE FROM issued_access_tokens WHERE jti IN \
        (SELECT jti FROM issued_access_tokens WHERE expires_at < ? LIMIT ?)",
    prune_revoked_access_tokens: "DELETE FROM revoked_access_tokens WHERE jti IN \
        (SELECT jti FROM revoked_access_tokens WHERE expires_at < ? LIMIT ?)",
    prune_dpop_proofs: "DELETE FROM dpop_proofs WHERE rowid IN \
        (SELECT rowid FROM dpop_proofs WHERE expires_at < ? LIMIT ?)",
    prune_revocations: "DELETE FROM revocations WHERE seq IN \
        (SELECT seq FROM revocations WHERE revoked_at < ? ORDER BY seq LIMIT ?)",
    prune_backchannel_deliveries: "DELETE FROM backchannel_deliveries WHERE id IN \
        (SELECT id FROM backchannel_deliveries WHERE COALESCE(delivered_at, failed_at) < ? LIMIT ?)",
});
