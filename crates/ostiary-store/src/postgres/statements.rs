//! PostgreSQL's text of the statements the shared store methods run ([`crate::methods`]).
//! Parameters are `$N`, in the order the method binds them; lists are `TEXT[]` (`= ANY($N)`).
//! Text is ordered with `COLLATE "C"` (bytewise), as SQLite orders it, whatever the
//! database's locale; usernames are compared and ordered by `lower()`, as SQLite's NOCASE
//! does. Transactions run at READ COMMITTED: what must be serialised locks rows
//! (`lock_user`, `lock_login_counter(s)`) or an advisory lock (`lock_signing_keys`).

use std::sync::LazyLock;

use super::{CLIENTS_CHANNEL, REVOCATIONS_CHANNEL};
use crate::rows::FAMILY_COLUMNS;
use crate::sql::{Statements, built};

/// The key of the transaction-scoped advisory lock that orders the revocation feed (the bytes
/// of `ostiaryf`).
const FEED_LOCK: i64 = i64::from_be_bytes(*b"ostiaryf");

/// The key of the transaction-scoped advisory lock under which a next signing key is stored
/// (the bytes of `ostiaryk`). sqlx's migrator locks other keys of the same one-`bigint` key
/// space.
const KEYS_LOCK: i64 = i64::from_be_bytes(*b"ostiaryk");

/// Active sessions where `$where` holds, newest first, with the clients holding refresh
/// tokens in each.
macro_rules! active_sessions {
    ($where:literal) => {
        concat!(
            "SELECT s.*, ARRAY(SELECT DISTINCT f.client_id FROM refresh_families f \
             WHERE f.sid = s.sid AND f.ended_at IS NULL ORDER BY f.client_id) AS clients \
             FROM sessions s WHERE ",
            $where,
            " AND s.ended_at IS NULL ORDER BY s.created_at DESC, s.sid COLLATE \"C\""
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
            " AND ($1::TEXT IS NULL OR user_id = $1) AND ($2::TEXT IS NULL OR sid = $2) \
             AND ($3::TEXT IS NULL OR kind = $3) AND ($4::BIGINT IS NULL OR at >= $4) \
             AND ($5::BIGINT IS NULL OR at < $5) ORDER BY id DESC LIMIT $6) AS newest ORDER BY id"
        )
    };
}

pub(crate) static SQL: LazyLock<Statements> = LazyLock::new(|| Statements {
    insert_user: "INSERT INTO users (id, username, password_hash, disabled, created_at) VALUES ($1, $2, $3, $4, $5)",
    find_user: "SELECT * FROM users WHERE id = $1",
    find_user_by_username: "SELECT * FROM users WHERE lower(username) = lower($1)",
    list_users: "SELECT * FROM users ORDER BY lower(username) COLLATE \"C\"",
    update_user_disabled: "UPDATE users SET disabled = $1 WHERE lower(username) = lower($2)",
    update_user_password: "UPDATE users SET password_hash = $1 WHERE id = $2",
    insert_client: "INSERT INTO clients (id, kind, secret_hash, redirect_uris, post_logout_redirect_uris, allowed_resources, \
        extra_scopes, web_origins, backchannel_logout_uri, policy, created_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    find_client: "SELECT * FROM clients WHERE id = $1",
    list_clients: "SELECT * FROM clients ORDER BY id COLLATE \"C\"",
    update_client_policy: "UPDATE clients SET policy = $1 WHERE id = $2",
    notify_client_changed: Some(built(format!("SELECT pg_notify('{CLIENTS_CHANNEL}', $1)"))),

    list_signing_keys: "SELECT kid, alg, private_pkcs8, created_at, activates_at FROM signing_keys \
        ORDER BY activates_at, created_at",
    insert_signing_key: "INSERT INTO signing_keys (kid, alg, private_pkcs8, created_at, activates_at) \
        VALUES ($1, $2, $3, $4, $5)",
    // Instances rotating at the same moment take turns here, so one next key is stored.
    lock_signing_keys: Some(built(format!("SELECT pg_advisory_xact_lock({KEYS_LOCK})"))),
    pending_signing_key: "SELECT 1 FROM signing_keys WHERE alg = $1 AND activates_at > $2",
    upsert_signing_key: "INSERT INTO signing_keys (kid, alg, private_pkcs8, created_at, activates_at) \
        VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kid) DO UPDATE SET private_pkcs8 = EXCLUDED.private_pkcs8",
    delete_signing_key: "DELETE FROM signing_keys WHERE kid = $1",

    lock_user: Some("SELECT 1 FROM users WHERE id = $1 FOR UPDATE"),
    live_sessions_of_user: "SELECT sid FROM sessions WHERE user_id = $1 AND ended_at IS NULL AND last_used_at > $2 \
        AND created_at > $3 ORDER BY created_at DESC, sid COLLATE \"C\"",
    insert_session: "INSERT INTO sessions (sid, user_id, cookie_hash, auth_time, created_at, last_used_at, ended_at, \
        end_reason, user_agent, ip) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    session_client_known: "SELECT 1 FROM session_clients WHERE sid = $1 AND client_id = $2",
    live_sessions_of_user_with_client: "SELECT s.sid FROM session_clients sc JOIN sessions s ON s.sid = sc.sid \
        WHERE sc.user_id = $1 AND sc.client_id = $2 AND s.sid <> $3 AND s.ended_at IS NULL \
        AND s.last_used_at > $4 AND s.created_at > $5 ORDER BY s.created_at DESC, s.sid COLLATE \"C\"",
    insert_session_client: "INSERT INTO session_clients (sid, client_id, user_id, first_at) VALUES ($1, $2, $3, $4) \
        ON CONFLICT (sid, client_id) DO NOTHING",
    find_session: "SELECT * FROM sessions WHERE sid = $1",
    find_session_by_cookie: "SELECT * FROM sessions WHERE cookie_hash = $1",
    touch_session: "UPDATE sessions SET last_used_at = GREATEST(last_used_at, $1) WHERE sid = $2 AND ended_at IS NULL",
    end_session: "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE sid = $3 AND ended_at IS NULL \
        RETURNING user_id",
    end_families_of_session: "UPDATE refresh_families SET ended_at = $1, end_reason = $2 \
        WHERE sid = $3 AND ended_at IS NULL",
    queue_backchannel_logouts: "INSERT INTO backchannel_deliveries (client_id, sid, uri, next_attempt_at, created_at) \
        SELECT c.id, $1, c.backchannel_logout_uri, $2, $2 FROM clients c \
        WHERE c.backchannel_logout_uri IS NOT NULL \
        AND c.id IN (SELECT client_id FROM session_clients WHERE sid = $1 \
        UNION SELECT client_id FROM authorization_codes WHERE sid = $1 AND used_at IS NOT NULL)",
    sessions_of_user: "SELECT sid FROM sessions WHERE user_id = $1 AND ended_at IS NULL \
        ORDER BY created_at, sid COLLATE \"C\"",
    list_active_sessions: active_sessions!("TRUE"),
    list_active_sessions_of_user: active_sessions!("s.user_id = $1"),
    list_expired_sessions: "SELECT * FROM sessions WHERE ended_at IS NULL AND (last_used_at <= $1 OR created_at <= $2) \
        ORDER BY last_used_at LIMIT $3",

    insert_authorization_code: "INSERT INTO authorization_codes (code_hash, client_id, redirect_uri, sid, user_id, scope, \
        resource, code_challenge, nonce, auth_time, created_at, expires_at, dpop_jkt) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    consume_authorization_code: "UPDATE authorization_codes SET used_at = $1 \
        WHERE code_hash = $2 AND client_id = $3 AND used_at IS NULL RETURNING *",
    find_authorization_code: "SELECT * FROM authorization_codes WHERE code_hash = $1",
    insert_refresh_family: "INSERT INTO refresh_families (id, sid, client_id, user_id, scope, resource, generation, \
        rotated_at, sealed_successor, created_at, ended_at, end_reason, code_hash, last_use_ip, last_use_user_agent, \
        dpop_jkt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    insert_refresh_token: "INSERT INTO refresh_tokens (token_hash, family_id, generation) VALUES ($1, $2, $3)",
    find_refresh_token: built(format!(
        "SELECT {FAMILY_COLUMNS}, t.generation AS token_generation FROM refresh_tokens t \
         JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = $1"
    )),
    find_refresh_family: built(format!(
        "SELECT {FAMILY_COLUMNS} FROM refresh_families f WHERE f.id = $1"
    )),
    mark_successor_reissued: "UPDATE refresh_families SET current_reissued = TRUE \
        WHERE id = $1 AND generation = $2 AND ended_at IS NULL",
    end_refresh_family: "UPDATE refresh_families SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL \
        RETURNING sid, client_id",
    forget_session_client: "DELETE FROM session_clients WHERE sid = $1 AND client_id = $2 AND NOT EXISTS \
        (SELECT 1 FROM refresh_families WHERE sid = $1 AND client_id = $2 AND ended_at IS NULL)",
    use_dpop_proof: "INSERT INTO dpop_proofs (jkt, jti_hash, expires_at) VALUES ($1, $2, $3) \
        ON CONFLICT (jkt, jti_hash) DO UPDATE SET expires_at = EXCLUDED.expires_at \
        WHERE dpop_proofs.expires_at < $4",
    insert_revoked_access_token: "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) \
        ON CONFLICT (jti) DO NOTHING",
    // Taken right before the seqs are allocated and held until commit, so a transaction that
    // allocates a higher seq commits after every lower one is visible: a reader paging with
    // `after = seq` never misses an entry. Taken last, so a transaction holding it waits for
    // no row lock, which keeps it from closing a deadlock cycle.
    lock_feed: Some(built(format!("SELECT pg_advisory_xact_lock({FEED_LOCK})"))),
    append_revocation: "INSERT INTO revocations (sid, jti, kid, revoked_at, reason) VALUES ($1, $2, $3, $4, $5)",
    notify_feed: Some(built(format!(
        "SELECT pg_notify('{REVOCATIONS_CHANNEL}', '')"
    ))),
    is_access_token_revoked: "SELECT 1 FROM revoked_access_tokens WHERE jti = $1",
    list_revocations: "SELECT seq, sid, jti, kid, revoked_at, reason FROM revocations \
        WHERE seq > $1 AND revoked_at >= $2 ORDER BY seq LIMIT $3",

    // Claiming pushes next_attempt_at past the lease. Rows another instance is claiming are
    // skipped (SKIP LOCKED); rows it has just claimed fail the re-checked
    // `next_attempt_at <= now`: two instances never take the same delivery.
    claim_backchannel_deliveries: "WITH claimed AS (UPDATE backchannel_deliveries SET next_attempt_at = $1 + $2 \
        WHERE id IN (SELECT id FROM backchannel_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL \
        AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING *) \
        SELECT * FROM claimed ORDER BY id",
    backchannel_delivered: "UPDATE backchannel_deliveries SET attempts = attempts + 1, delivered_at = $1, \
        last_error = NULL WHERE id = $2",
    backchannel_retry: "UPDATE backchannel_deliveries SET attempts = attempts + 1, next_attempt_at = $1, \
        last_error = $2 WHERE id = $3",
    backchannel_gave_up: "UPDATE backchannel_deliveries SET attempts = attempts + 1, failed_at = $1, \
        last_error = $2 WHERE id = $3",
    list_undelivered_backchannel: "SELECT * FROM backchannel_deliveries WHERE delivered_at IS NULL ORDER BY id",

    insert_audit_event: "INSERT INTO audit_events (at, kind, actor, user_id, sid, client_id, ip, user_agent, details) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    list_audit_events_of_user: audit_events!("user_id = $1"),
    list_audit_events_of_session: audit_events!("sid = $2"),
    list_audit_events: audit_events!("TRUE"),

    ensure_login_counter: "INSERT INTO login_counters (key, username, failures, last_failure_at, aggregated, \
        aggregate_since, reported_at) VALUES ($1, $2, 0, 0, 0, 0, 0) ON CONFLICT (key) DO NOTHING",
    lock_login_counter: "SELECT failures, last_failure_at, aggregated, aggregate_since, reported_at \
        FROM login_counters WHERE key = $1 FOR UPDATE",
    update_login_counter: "UPDATE login_counters SET failures = $2, last_failure_at = $3, aggregated = $4, \
        aggregate_since = $5, reported_at = $6 WHERE key = $1",
    lock_login_counters: Some(
        "SELECT key FROM login_counters WHERE key = ANY($1) ORDER BY key FOR UPDATE",
    ),
    delete_login_counter: "DELETE FROM login_counters WHERE key = $1",
    decrement_login_counter: "UPDATE login_counters SET failures = GREATEST(failures - 1, 0), \
        aggregated = GREATEST(aggregated - $1, 0) WHERE key = $2",
    clear_login_counters: "DELETE FROM login_counters WHERE username = $1",
    // Counters an attempt holds right now are skipped: they are not forgotten after all.
    expired_login_counters: "SELECT key, failures, last_failure_at, aggregated, aggregate_since, reported_at \
        FROM login_counters WHERE last_failure_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED",
    delete_login_counters: "DELETE FROM login_counters WHERE key = ANY($1)",

    claim_job: "INSERT INTO job_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
        ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at \
        WHERE job_leases.expires_at <= $4 OR job_leases.holder = EXCLUDED.holder",
    // Sessions ended long ago: nothing else locks them any more, but skip any that something
    // still holds, rather than wait.
    ended_sessions: "SELECT sid FROM sessions WHERE ended_at < $1 ORDER BY ended_at LIMIT $2 \
        FOR UPDATE SKIP LOCKED",
    prune_sessions: [
        "DELETE FROM issued_access_tokens WHERE family_id IN \
         (SELECT id FROM refresh_families WHERE sid = ANY($1)) \
         OR code_hash IN (SELECT code_hash FROM authorization_codes WHERE sid = ANY($1))",
        "DELETE FROM refresh_tokens WHERE family_id IN \
         (SELECT id FROM refresh_families WHERE sid = ANY($1))",
        "DELETE FROM refresh_families WHERE sid = ANY($1)",
        "DELETE FROM authorization_codes WHERE sid = ANY($1)",
        "DELETE FROM session_clients WHERE sid = ANY($1)",
        "DELETE FROM backchannel_deliveries WHERE sid = ANY($1) \
         AND (delivered_at IS NOT NULL OR failed_at IS NOT NULL)",
        "DELETE FROM sessions WHERE sid = ANY($1)",
    ],
    // = ANY (ARRAY(…)): the oldest ids first, then each by the primary key (as `IN (…)`, the
    // generic plan joins the subquery with a scan of the whole table).
    prune_audit_events: "DELETE FROM audit_events WHERE id = ANY (ARRAY( \
        SELECT id FROM audit_events ORDER BY id LIMIT $2)) AND at < $1",
    prune_authorization_codes: "DELETE FROM authorization_codes WHERE code_hash IN \
        (SELECT code_hash FROM authorization_codes WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
    prune_issued_access_tokens: "DELETE FROM issued_access_tokens WHERE jti IN \
        (SELECT jti FROM issued_access_tokens WHERE expires_at < $1 LIMIT $2)",
    prune_revoked_access_tokens: "DELETE FROM revoked_access_tokens WHERE jti IN \
        (SELECT jti FROM revoked_access_tokens WHERE expires_at < $1 LIMIT $2)",
    prune_dpop_proofs: "DELETE FROM dpop_proofs WHERE ctid IN \
        (SELECT ctid FROM dpop_proofs WHERE expires_at < $1 LIMIT $2)",
    prune_revocations: "DELETE FROM revocations WHERE seq IN \
        (SELECT seq FROM revocations WHERE revoked_at < $1 ORDER BY seq LIMIT $2)",
    prune_backchannel_deliveries: "DELETE FROM backchannel_deliveries WHERE id IN \
        (SELECT id FROM backchannel_deliveries WHERE COALESCE(delivered_at, failed_at) < $1 LIMIT $2 \
         FOR UPDATE SKIP LOCKED)",
});
