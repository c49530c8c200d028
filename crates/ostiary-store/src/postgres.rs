//! The PostgreSQL implementation of [`Store`], for several IdP instances sharing one database.
//!
//! Transactions run at PostgreSQL's default isolation, READ COMMITTED, so what must be atomic
//! across processes is built from row locks and single conditional statements:
//!
//! - **Compare-and-swap** (`rotate_refresh`, `consume_authorization_code`, every ending) is one
//!   `UPDATE … WHERE generation = $n AND ended_at IS NULL` (or `WHERE used_at IS NULL`,
//!   `WHERE ended_at IS NULL`): a concurrent writer waits for the row, then re-checks the
//!   condition on the committed version, so exactly one caller changes it.
//! - **Session limits** (`insert_session`, `admit_client_session`) count, evict and insert with
//!   the user's row locked (`SELECT … FROM users … FOR UPDATE`), so two logins of one user are
//!   admitted one after the other, each counting what the other stored.
//! - **The revocation feed** must never show an entry with a lower `seq` than one a reader has
//!   already seen. A sequence alone hands out numbers in allocation order but transactions commit
//!   in any order, so [`Tx::commit`] takes a transaction-scoped advisory lock right before
//!   allocating seqs and holds it until commit: seq order is commit order. It also sends
//!   `NOTIFY ostiary_revocations` (delivered at commit) for instances that listen.
//! - **Back-channel claims** select with `FOR UPDATE SKIP LOCKED`, so two instances never claim
//!   the same delivery.
//!
//! Lock order, to wait rather than deadlock: the user's row, then sessions, then their refresh
//! families, and the feed's advisory lock last of all (feed entries are appended when the
//! transaction's rows are all changed, just before commit). A rotation therefore touches the
//! session before it swaps the family, in the order a logout locks them.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use ostiary_core::audit::{AuditEvent, AuditFilter, AuditKind};
use ostiary_core::client::{Client, ClientId};
use ostiary_core::clock::UnixTime;
use ostiary_core::code::{AuthorizationCode, CodeConsumption};
use ostiary_core::keys::{SigningAlgorithm, StoredKey};
use ostiary_core::refresh::RefreshFamily;
use ostiary_core::retention::Prunable;
use ostiary_core::secret::CredentialHash;
use ostiary_core::session::{ClientPolicy, EndReason, Session};
use ostiary_core::store::{
    BackchannelDelivery, CodeGrantsRevoked, DeliveryOutcome, IssuedAccessToken, LoginAttempt,
    RefreshGrant, RevocationEntry, Rotation, SessionAdmission, SessionLimit, Store, StoreError,
    ThrottleKey, ThrottleReport,
};
use ostiary_core::throttle::ThrottlePolicy;
use ostiary_core::user::{PasswordHashString, User, Username};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Connection as _, Postgres, Row};

use crate::OpenError;
use crate::rows::{
    FAMILY_COLUMNS, REFRESH_GRANT_SELECT, audit_from_row, client_from_row, code_from_row,
    counter_from_row, delivery_from_row, family_from_row, refresh_grant_from_row, session_from_row,
    user_from_row,
};
use crate::shared::{
    LimitDecision, TABLES, corrupt, describe, invalid_url, is_unique_violation, json_list,
    leftover_reports, limit_decision, log_opened, migration_failed, migrator, plan_login_attempt,
    policy_json, redacted_url, schema_status, unavailable,
};

/// The embedded migrations, in order.
#[rustfmt::skip]
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/postgres/0001_init.sql")),
    (2, "login_failures_key_lifecycle", include_str!("../migrations/postgres/0002_login_failures_key_lifecycle.sql")),
    (3, "hardening", include_str!("../migrations/postgres/0003_hardening.sql")),
];

/// The key of the transaction-scoped advisory lock that orders the revocation feed (the bytes
/// of `ostiaryf`). sqlx's migrator locks other keys of the same one-`bigint` key space.
const FEED_LOCK: i64 = i64::from_be_bytes(*b"ostiaryf");

/// The key of the transaction-scoped advisory lock under which a next signing key is stored.
const KEYS_LOCK: i64 = i64::from_be_bytes(*b"ostiaryk");

/// Stores a signing key, inside a transaction or on its own.
async fn insert_key<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    key: &StoredKey,
) -> Result<(), StoreError> {
    use secrecy::ExposeSecret as _;
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, private_pkcs8, created_at, activates_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&key.kid)
    .bind(key.alg.as_str())
    .bind(key.private_pkcs8.expose_secret().to_vec())
    .bind(key.created_at)
    .bind(key.activates_at)
    .execute(executor)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict("key id")
        } else {
            unavailable(e)
        }
    })?;
    Ok(())
}

/// The channel notified, at commit, whenever a transaction appends to the revocation feed.
pub const REVOCATIONS_CHANNEL: &str = "ostiary_revocations";

/// Ostiary's storage on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

/// How long opening the database waits for its first connection (TCP, TLS, authentication)
/// before saying that the server does not answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The connection options a `postgres:` URL names (an error if the URL does not parse).
pub(crate) fn connect_options(url: &str) -> Result<PgConnectOptions, OpenError> {
    PgConnectOptions::from_str(url).map_err(|e| {
        invalid_url(
            "PostgreSQL",
            "postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE",
            &e,
        )
    })
}

impl PostgresStore {
    /// Connects to the database at a `postgres://` (or `postgresql://`) URL and applies
    /// migrations. The database must exist; the schema is created in it on first start.
    pub async fn connect(url: &str) -> Result<Self, OpenError> {
        Self::connect_with(url, true).await
    }

    /// Connects, applying migrations if `migrate`. A server that cannot be reached, or that
    /// refuses the connection (authentication, a missing database), is an error within 5
    /// seconds, naming its address and the cause. Logs which database is in use
    /// (without its password) and whether it was empty.
    pub async fn connect_with(url: &str, migrate: bool) -> Result<Self, OpenError> {
        let options = connect_options(url)?.application_name("ostiary");
        let server = match options.get_socket() {
            Some(socket) => socket.display().to_string(),
            None => format!("{}:{}", options.get_host(), options.get_port()),
        };
        let cannot = |why: String| {
            OpenError::Database(format!("cannot connect to PostgreSQL at {server}: {why}"))
        };
        // One connection on its own first: the pool would retry a refused connection until
        // its acquire timeout and then report only that it timed out.
        let first = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| cannot(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))?
            .map_err(|e| {
                tracing::debug!(error = ?e, "connecting to PostgreSQL failed");
                cannot(describe(&e))
            })?;
        let _ = first.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .idle_timeout(Some(Duration::from_secs(600)))
            .max_lifetime(Some(Duration::from_secs(3600)))
            .connect_with(options)
            .await
            .map_err(|e| cannot(describe(&e)))?;
        let store = Self { pool };
        let applied = store
            .applied_migration()
            .await
            .map_err(|e| OpenError::Database(describe(&e)))?;
        if migrate {
            store.migrate().await?;
        }
        log_opened(&redacted_url(url), applied.is_none(), migrate);
        Ok(store)
    }

    /// Applies the migrations not yet applied. Instances starting together take turns (sqlx's
    /// migrator holds an advisory lock while it runs), so this is safe to call from each.
    pub async fn migrate(&self) -> Result<(), OpenError> {
        migrator(MIGRATIONS)
            .run(&self.pool)
            .await
            .map_err(migration_failed)
    }

    /// The last migration applied, `None` on a database without Ostiary's schema.
    async fn applied_migration(&self) -> Result<Option<i64>, sqlx::Error> {
        let tracked: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                .fetch_one(&self.pool)
                .await?;
        match tracked {
            Some(_) => {
                sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                    .fetch_one(&self.pool)
                    .await
            }
            None => Ok(None),
        }
    }

    async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(Tx {
            tx: self.pool.begin().await.map_err(unavailable)?,
            feed: Vec::new(),
        })
    }
}

/// An entry a transaction will append to the revocation feed when it commits.
struct FeedEntry {
    sid: Option<String>,
    jti: Option<String>,
    kid: Option<String>,
    revoked_at: UnixTime,
    reason: &'static str,
}

/// A write transaction and the feed entries it publishes when it commits.
struct Tx {
    tx: sqlx::Transaction<'static, Postgres>,
    feed: Vec<FeedEntry>,
}

impl Tx {
    /// The connection, for running statements in the transaction.
    fn conn(&mut self) -> &mut sqlx::PgConnection {
        &mut self.tx
    }

    /// Appends the feed entries (if any) and commits.
    async fn commit(mut self) -> Result<(), StoreError> {
        if !self.feed.is_empty() {
            publish(&mut self.tx, &self.feed).await?;
        }
        self.tx.commit().await.map_err(unavailable)
    }

    /// Undoes everything, feed entries included.
    async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await.map_err(unavailable)
    }
}

/// Appends entries to the revocation feed, in order, as the last writes of a transaction.
///
/// The advisory lock is taken right before the seqs are allocated and held until commit, so a
/// transaction that allocates a higher seq commits after every lower one is visible: a reader
/// paging with `after = seq` never misses an entry. Taking it last means that a transaction
/// holding it waits for no row lock, which keeps the lock from closing a deadlock cycle.
async fn publish(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    entries: &[FeedEntry],
) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(FEED_LOCK)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    for entry in entries {
        sqlx::query(
            "INSERT INTO revocations (sid, jti, kid, revoked_at, reason) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&entry.sid)
        .bind(&entry.jti)
        .bind(&entry.kid)
        .bind(entry.revoked_at)
        .bind(entry.reason)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    }
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(REVOCATIONS_CHANNEL)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// Runs a `DELETE … WHERE … IN (SELECT … WHERE cut-off < $1 LIMIT $2)` in the transaction;
/// returns how many rows went.
async fn delete_batch(
    tx: &mut Tx,
    statement: &'static str,
    before: UnixTime,
    limit: i64,
) -> Result<u64, StoreError> {
    let done = sqlx::query(statement)
        .bind(before)
        .bind(limit)
        .execute(tx.conn())
        .await
        .map_err(unavailable)?;
    Ok(done.rows_affected())
}

/// Records an access token minted from a code or a family, on `conn` (in a transaction or not).
async fn insert_issued(
    conn: &mut sqlx::PgConnection,
    token: &IssuedAccessToken,
    code_hash: Option<&CredentialHash>,
    family_id: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO issued_access_tokens (jti, code_hash, family_id, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&token.jti)
    .bind(code_hash.map(CredentialHash::as_str))
    .bind(family_id)
    .bind(token.expires_at)
    .execute(conn)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// Records an access token as revoked until it expires; its `jti` is published when the
/// transaction commits. `false` (nothing published) if it already was.
async fn revoke_access_token_in(
    tx: &mut Tx,
    jti: &str,
    expires_at: UnixTime,
    now: UnixTime,
    reason: &'static str,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
    )
    .bind(jti)
    .bind(expires_at)
    .execute(tx.conn())
    .await
    .map_err(unavailable)?;
    let new = inserted.rows_affected() == 1;
    if new {
        tx.feed.push(FeedEntry {
            sid: None,
            jti: Some(jti.to_owned()),
            kid: None,
            revoked_at: now,
            reason,
        });
    }
    Ok(new)
}

/// Ends one session and every refresh family in it, queues its back-channel logouts and audits
/// the ending, inside the caller's transaction; its `sid` is published when that commits.
/// `false` (and nothing published) if it had already ended.
async fn end_in(
    tx: &mut Tx,
    sid: &str,
    now: UnixTime,
    reason: EndReason,
) -> Result<bool, StoreError> {
    let ended = sqlx::query(
        "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE sid = $3 AND ended_at IS NULL RETURNING user_id",
    )
    .bind(now)
    .bind(reason.as_str())
    .bind(sid)
    .fetch_optional(tx.conn())
    .await
    .map_err(unavailable)?;
    let Some(row) = ended else {
        return Ok(false);
    };
    let user_id: String = row.try_get("user_id").map_err(corrupt)?;
    append_audit(
        tx.conn(),
        &AuditEvent::session_ended(now, sid, &user_id, reason),
    )
    .await?;
    sqlx::query("UPDATE refresh_families SET ended_at = $1, end_reason = $2 WHERE sid = $3 AND ended_at IS NULL")
        .bind(now)
        .bind(reason.as_str())
        .bind(sid)
        .execute(tx.conn())
        .await
        .map_err(unavailable)?;
    tx.feed.push(FeedEntry {
        sid: Some(sid.to_owned()),
        jti: None,
        kid: None,
        revoked_at: now,
        reason: reason.as_str(),
    });
    // Back-channel logout is owed to every client with a logout endpoint that had tokens in
    // the session (it redeemed a code of it); queued here, so it survives a restart.
    sqlx::query(
        "INSERT INTO backchannel_deliveries (client_id, sid, uri, next_attempt_at, created_at) \
         SELECT c.id, $1, c.backchannel_logout_uri, $2, $2 FROM clients c \
         WHERE c.backchannel_logout_uri IS NOT NULL \
         AND c.id IN (SELECT client_id FROM session_clients WHERE sid = $1 \
         UNION SELECT client_id FROM authorization_codes WHERE sid = $1 AND used_at IS NOT NULL)",
    )
    .bind(sid)
    .bind(now)
    .execute(tx.conn())
    .await
    .map_err(unavailable)?;
    Ok(true)
}

/// Ends the sessions in `rows` (a `sid` column) to admit `by_sid` under a session limit, and
/// audits each eviction; returns the ended `sid`s.
async fn evict(
    tx: &mut Tx,
    rows: &[PgRow],
    user_id: &str,
    by_sid: &str,
    now: UnixTime,
    details: serde_json::Value,
) -> Result<Vec<String>, StoreError> {
    let mut evicted = Vec::new();
    for row in rows {
        let sid: String = row.try_get("sid").map_err(corrupt)?;
        if end_in(tx, &sid, now, EndReason::PolicyEviction).await? {
            let event = AuditEvent::session_evicted(now, &sid, user_id, by_sid, details.clone());
            append_audit(tx.conn(), &event).await?;
            evicted.push(sid);
        }
    }
    Ok(evicted)
}

/// Locks the user's row until the transaction ends, so that the session-limit decisions of
/// one user (count, evict, insert) run one at a time across every instance.
async fn lock_user(tx: &mut Tx, user_id: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
        .bind(user_id)
        .fetch_optional(tx.conn())
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// Appends an audit event, inside the caller's transaction or on its own.
async fn append_audit<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_events (at, kind, actor, user_id, sid, client_id, ip, user_agent, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(event.at)
    .bind(event.kind.as_str())
    .bind(&event.actor)
    .bind(&event.user_id)
    .bind(&event.sid)
    .bind(&event.client_id)
    .bind(&event.ip)
    .bind(&event.user_agent)
    .bind(event.details.to_string())
    .execute(executor)
    .await
    .map_err(unavailable)?;
    Ok(())
}

// Text is ordered with `COLLATE "C"` (bytewise), as SQLite orders it, whatever the database's
// locale; usernames by `lower()`, as SQLite's NOCASE orders them.
#[async_trait]
impl Store for PostgresStore {
    #[tracing::instrument(skip_all)]
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO users (id, username, password_hash, disabled, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&user.id)
            .bind(user.username.as_str())
            .bind(user.password_hash.as_str())
            .bind(user.disabled)
            .bind(user.created_at)
            .execute(&self.pool)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("username") } else { unavailable(e) })?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn find_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(user_from_row).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn find_user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE lower(username) = lower($1)")
            .bind(username.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(user_from_row).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY lower(username) COLLATE \"C\"")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(user_from_row).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn update_user_disabled(
        &self,
        username: &Username,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET disabled = $1 WHERE lower(username) = lower($2)")
            .bind(disabled)
            .bind(username.as_str())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    #[tracing::instrument(skip_all)]
    async fn update_user_password(
        &self,
        user_id: &str,
        hash: &PasswordHashString,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash.as_str())
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    #[tracing::instrument(skip_all)]
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO clients (id, kind, secret_hash, redirect_uris, post_logout_redirect_uris, allowed_resources, \
             extra_scopes, web_origins, backchannel_logout_uri, policy, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(client.id.as_str())
        .bind(client.kind.as_str())
        .bind(client.secret_hash.as_ref().map(|h| h.as_str().to_owned()))
        .bind(json_list(&client.redirect_uris))
        .bind(json_list(&client.post_logout_redirect_uris))
        .bind(json_list(&client.allowed_resources))
        .bind(json_list(&client.extra_scopes))
        .bind(json_list(&client.web_origins))
        .bind(client.backchannel_logout_uri.as_ref().map(|u| u.as_str().to_owned()))
        .bind(policy_json(&client.policy)?)
        .bind(client.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("client id") } else { unavailable(e) })?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn find_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        let row = sqlx::query("SELECT * FROM clients WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(client_from_row).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        let rows = sqlx::query("SELECT * FROM clients ORDER BY id COLLATE \"C\"")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(client_from_row).collect()
    }

    #[tracing::instrument(skip_all, fields(client_id = %id))]
    async fn update_client_policy(
        &self,
        id: &ClientId,
        policy: &ClientPolicy,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE clients SET policy = $1 WHERE id = $2")
            .bind(policy_json(policy)?)
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    #[tracing::instrument(skip_all)]
    async fn list_signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, alg, private_pkcs8, created_at, activates_at FROM signing_keys \
             ORDER BY activates_at, created_at",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let alg: String = row.try_get("alg").map_err(corrupt)?;
                Ok(StoredKey {
                    kid: row.try_get("kid").map_err(corrupt)?,
                    alg: SigningAlgorithm::parse(&alg).map_err(corrupt)?,
                    private_pkcs8: row
                        .try_get::<Vec<u8>, _>("private_pkcs8")
                        .map_err(corrupt)?
                        .into(),
                    created_at: row.try_get("created_at").map_err(corrupt)?,
                    activates_at: row.try_get("activates_at").map_err(corrupt)?,
                })
            })
            .collect()
    }

    #[tracing::instrument(skip_all)]
    async fn insert_signing_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        insert_key(&self.pool, key).await
    }

    #[tracing::instrument(skip_all, fields(kid = %key.kid))]
    async fn insert_next_signing_key(
        &self,
        key: &StoredKey,
        after: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        // Instances rotating at the same moment take turns here, so one next key is stored.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(KEYS_LOCK)
            .execute(tx.conn())
            .await
            .map_err(unavailable)?;
        let pending =
            sqlx::query("SELECT 1 FROM signing_keys WHERE alg = $1 AND activates_at > $2")
                .bind(key.alg.as_str())
                .bind(after)
                .fetch_optional(tx.conn())
                .await
                .map_err(unavailable)?;
        if pending.is_some() {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_key(tx.conn(), key).await?;
        tx.commit().await?;
        Ok(true)
    }

    #[tracing::instrument(skip_all)]
    async fn change_signing_keys(
        &self,
        keys: &[StoredKey],
        withdraw: &[String],
        now: UnixTime,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError> {
        use secrecy::ExposeSecret as _;
        let mut tx = self.begin().await?;
        for key in keys {
            sqlx::query(
                "INSERT INTO signing_keys (kid, alg, private_pkcs8, created_at, activates_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (kid) DO UPDATE SET private_pkcs8 = EXCLUDED.private_pkcs8",
            )
            .bind(&key.kid)
            .bind(key.alg.as_str())
            .bind(key.private_pkcs8.expose_secret().to_vec())
            .bind(key.created_at)
            .bind(key.activates_at)
            .execute(tx.conn())
            .await
            .map_err(unavailable)?;
        }
        for kid in withdraw {
            let gone = sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
                .bind(kid)
                .execute(tx.conn())
                .await
                .map_err(unavailable)?;
            if gone.rows_affected() == 1 {
                tx.feed.push(FeedEntry {
                    sid: None,
                    jti: None,
                    kid: Some(kid.clone()),
                    revoked_at: now,
                    reason: "signing_key_withdrawn",
                });
            }
        }
        for event in audit {
            append_audit(tx.conn(), event).await?;
        }
        tx.commit().await
    }

    #[tracing::instrument(skip_all, fields(kid = %kid))]
    async fn delete_signing_key(&self, kid: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    #[tracing::instrument(skip_all, fields(sid = %session.sid))]
    async fn insert_session(
        &self,
        session: &Session,
        limit: SessionLimit,
        audit: &AuditEvent,
    ) -> Result<SessionAdmission, StoreError> {
        let mut tx = self.begin().await?;
        let mut evicted = Vec::new();
        if limit.max > 0 {
            lock_user(&mut tx, &session.user_id).await?;
            // A statement after the lock: under READ COMMITTED it sees every session that the
            // previous holder of the lock committed.
            let rows = sqlx::query(
                "SELECT sid FROM sessions WHERE user_id = $1 AND ended_at IS NULL AND last_used_at > $2 AND created_at > $3 \
                 ORDER BY created_at DESC, sid COLLATE \"C\"",
            )
            .bind(&session.user_id)
            .bind(limit.idle_since)
            .bind(limit.absolute_since)
            .fetch_all(tx.conn())
            .await
            .map_err(unavailable)?;
            match limit_decision(&limit, rows.len()) {
                LimitDecision::Admit => {}
                LimitDecision::Refuse => {
                    tx.rollback().await?;
                    return Ok(SessionAdmission::Refused);
                }
                LimitDecision::EvictFrom(oldest) => {
                    evicted = evict(
                        &mut tx,
                        &rows[oldest..],
                        &session.user_id,
                        &session.sid,
                        session.created_at,
                        serde_json::json!({"max_sessions_per_user": limit.max}),
                    )
                    .await?;
                }
            }
        }
        sqlx::query(
            "INSERT INTO sessions (sid, user_id, cookie_hash, auth_time, created_at, last_used_at, ended_at, end_reason, \
             user_agent, ip) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&session.sid)
        .bind(&session.user_id)
        .bind(session.cookie_hash.as_ref().map(|h| h.as_str().to_owned()))
        .bind(session.auth_time)
        .bind(session.created_at)
        .bind(session.last_used_at)
        .bind(session.ended_at)
        .bind(&session.end_reason)
        .bind(&session.user_agent)
        .bind(&session.ip)
        .execute(tx.conn())
        .await
        .map_err(unavailable)?;
        append_audit(tx.conn(), audit).await?;
        tx.commit().await?;
        Ok(SessionAdmission::Admitted { evicted })
    }

    #[tracing::instrument(skip_all, fields(sid = %sid, client_id = %client_id))]
    async fn admit_client_session(
        &self,
        sid: &str,
        user_id: &str,
        client_id: &ClientId,
        now: UnixTime,
        limit: SessionLimit,
    ) -> Result<SessionAdmission, StoreError> {
        let mut tx = self.begin().await?;
        if limit.max > 0 {
            lock_user(&mut tx, user_id).await?;
        }
        let known = sqlx::query("SELECT 1 FROM session_clients WHERE sid = $1 AND client_id = $2")
            .bind(sid)
            .bind(client_id.as_str())
            .fetch_optional(tx.conn())
            .await
            .map_err(unavailable)?;
        let mut evicted = Vec::new();
        if known.is_none() && limit.max > 0 {
            let rows = sqlx::query(
                "SELECT s.sid FROM session_clients sc JOIN sessions s ON s.sid = sc.sid \
                 WHERE sc.user_id = $1 AND sc.client_id = $2 AND s.sid <> $3 AND s.ended_at IS NULL \
                 AND s.last_used_at > $4 AND s.created_at > $5 ORDER BY s.created_at DESC, s.sid COLLATE \"C\"",
            )
            .bind(user_id)
            .bind(client_id.as_str())
            .bind(sid)
            .bind(limit.idle_since)
            .bind(limit.absolute_since)
            .fetch_all(tx.conn())
            .await
            .map_err(unavailable)?;
            match limit_decision(&limit, rows.len()) {
                LimitDecision::Admit => {}
                LimitDecision::Refuse => {
                    tx.rollback().await?;
                    return Ok(SessionAdmission::Refused);
                }
                LimitDecision::EvictFrom(oldest) => {
                    evicted = evict(
                        &mut tx,
                        &rows[oldest..],
                        user_id,
                        sid,
                        now,
                        serde_json::json!({"client_id": client_id, "max_sessions_per_user": limit.max}),
                    )
                    .await?;
                }
            }
        }
        sqlx::query(
            "INSERT INTO session_clients (sid, client_id, user_id, first_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (sid, client_id) DO NOTHING",
        )
        .bind(sid)
        .bind(client_id.as_str())
        .bind(user_id)
        .bind(now)
        .execute(tx.conn())
        .await
        .map_err(unavailable)?;
        tx.commit().await?;
        Ok(SessionAdmission::Admitted { evicted })
    }

    #[tracing::instrument(skip_all, fields(sid = %sid))]
    async fn find_session(&self, sid: &str) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE sid = $1")
            .bind(sid)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(session_from_row).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn find_session_by_cookie(
        &self,
        cookie_hash: &CredentialHash,
    ) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE cookie_hash = $1")
            .bind(cookie_hash.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(session_from_row).transpose()
    }

    #[tracing::instrument(skip_all, fields(sid = %sid))]
    async fn touch_session(&self, sid: &str, now: UnixTime) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET last_used_at = GREATEST(last_used_at, $1) WHERE sid = $2 AND ended_at IS NULL")
            .bind(now)
            .bind(sid)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(sid = %sid, reason = reason.as_str()))]
    async fn end_session(
        &self,
        sid: &str,
        now: UnixTime,
        reason: EndReason,
        cause: Option<&AuditEvent>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        if let Some(cause) = cause {
            append_audit(tx.conn(), cause).await?;
        }
        let ended = end_in(&mut tx, sid, now, reason).await?;
        tx.commit().await?;
        Ok(ended)
    }

    #[tracing::instrument(skip_all, fields(user_id = %user_id, reason = reason.as_str()))]
    async fn end_sessions_of_user(
        &self,
        user_id: &str,
        now: UnixTime,
        reason: EndReason,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.begin().await?;
        // Locks sessions in the order a session limit does (user first), and after the lock
        // sees every session a concurrent login stored.
        lock_user(&mut tx, user_id).await?;
        let rows = sqlx::query(
            "SELECT sid FROM sessions WHERE user_id = $1 AND ended_at IS NULL ORDER BY created_at, sid COLLATE \"C\"",
        )
        .bind(user_id)
        .fetch_all(tx.conn())
        .await
        .map_err(unavailable)?;
        let mut ended = Vec::with_capacity(rows.len());
        for row in &rows {
            let sid: String = row.try_get("sid").map_err(corrupt)?;
            if end_in(&mut tx, &sid, now, reason).await? {
                ended.push(sid);
            }
        }
        tx.commit().await?;
        Ok(ended)
    }

    #[tracing::instrument(skip_all)]
    async fn list_active_sessions(
        &self,
        user_id: Option<&str>,
    ) -> Result<Vec<(Session, Vec<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.*, ARRAY(SELECT DISTINCT f.client_id FROM refresh_families f \
             WHERE f.sid = s.sid AND f.ended_at IS NULL ORDER BY f.client_id) AS clients \
             FROM sessions s WHERE s.ended_at IS NULL AND ($1::TEXT IS NULL OR s.user_id = $1) \
             ORDER BY s.created_at DESC, s.sid COLLATE \"C\"",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let clients: Vec<String> = row.try_get("clients").map_err(corrupt)?;
                Ok((session_from_row(row)?, clients))
            })
            .collect()
    }

    #[tracing::instrument(skip_all)]
    async fn insert_authorization_code(&self, code: &AuthorizationCode) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, client_id, redirect_uri, sid, user_id, scope, resource, \
             code_challenge, nonce, auth_time, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(code.code_hash.as_str())
        .bind(code.client_id.as_str())
        .bind(&code.redirect_uri)
        .bind(&code.sid)
        .bind(&code.user_id)
        .bind(code.scope.to_string())
        .bind(&code.resource)
        .bind(code.code_challenge.as_str())
        .bind(&code.nonce)
        .bind(code.auth_time)
        .bind(code.created_at)
        .bind(code.expires_at)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn consume_authorization_code(
        &self,
        code_hash: &CredentialHash,
        client_id: &ClientId,
        now: UnixTime,
        access_token: &IssuedAccessToken,
    ) -> Result<CodeConsumption, StoreError> {
        let mut tx = self.begin().await?;
        let won = sqlx::query(
            "UPDATE authorization_codes SET used_at = $1 \
             WHERE code_hash = $2 AND client_id = $3 AND used_at IS NULL RETURNING *",
        )
        .bind(now)
        .bind(code_hash.as_str())
        .bind(client_id.as_str())
        .fetch_optional(tx.conn())
        .await
        .map_err(unavailable)?;
        if let Some(row) = won {
            insert_issued(tx.conn(), access_token, Some(code_hash), None).await?;
            tx.commit().await?;
            return Ok(CodeConsumption::First(code_from_row(&row)?));
        }
        let seen = sqlx::query("SELECT * FROM authorization_codes WHERE code_hash = $1")
            .bind(code_hash.as_str())
            .fetch_optional(tx.conn())
            .await
            .map_err(unavailable)?;
        tx.rollback().await?;
        Ok(match seen {
            Some(row) => {
                let code = code_from_row(&row)?;
                if code.client_id == *client_id {
                    CodeConsumption::Replayed(code)
                } else {
                    CodeConsumption::OtherClient(code)
                }
            }
            None => CodeConsumption::Unknown,
        })
    }

    #[tracing::instrument(skip_all, fields(family = %family.id))]
    async fn insert_refresh_family(
        &self,
        family: &RefreshFamily,
        first_token: &CredentialHash,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO refresh_families (id, sid, client_id, user_id, scope, resource, generation, rotated_at, \
             sealed_successor, created_at, ended_at, end_reason, code_hash, last_use_ip, last_use_user_agent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&family.id)
        .bind(&family.sid)
        .bind(family.client_id.as_str())
        .bind(&family.user_id)
        .bind(family.scope.to_string())
        .bind(&family.resource)
        .bind(family.generation)
        .bind(family.rotated_at)
        .bind(&family.sealed_successor)
        .bind(family.created_at)
        .bind(family.ended_at)
        .bind(&family.end_reason)
        .bind(family.code_hash.as_ref().map(|h| h.as_str().to_owned()))
        .bind(&family.last_use_ip)
        .bind(&family.last_use_user_agent)
        .execute(tx.conn())
        .await
        .map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, generation) VALUES ($1, $2, $3)",
        )
        .bind(first_token.as_str())
        .bind(&family.id)
        .bind(family.generation)
        .execute(tx.conn())
        .await
        .map_err(unavailable)?;
        tx.commit().await
    }

    #[tracing::instrument(skip_all)]
    async fn find_refresh_token(
        &self,
        token_hash: &CredentialHash,
    ) -> Result<Option<(RefreshFamily, i64)>, StoreError> {
        let sql = format!(
            "SELECT {FAMILY_COLUMNS}, t.generation AS token_generation FROM refresh_tokens t \
             JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = $1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(token_hash.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|row| {
            Ok((
                family_from_row(&row)?,
                row.try_get("token_generation").map_err(corrupt)?,
            ))
        })
        .transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn find_refresh_grant(
        &self,
        token_hash: &CredentialHash,
    ) -> Result<Option<RefreshGrant>, StoreError> {
        let sql = format!("{REFRESH_GRANT_SELECT} WHERE t.token_hash = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(token_hash.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(refresh_grant_from_row).transpose()
    }

    #[tracing::instrument(skip_all, fields(family = %family_id))]
    async fn find_refresh_family(
        &self,
        family_id: &str,
    ) -> Result<Option<RefreshFamily>, StoreError> {
        let sql = format!("SELECT {FAMILY_COLUMNS} FROM refresh_families f WHERE f.id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(family_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(family_from_row).transpose()
    }

    #[tracing::instrument(skip_all, fields(family = %rotation.family_id, generation = rotation.expected_generation))]
    async fn rotate_refresh(&self, rotation: &Rotation) -> Result<bool, StoreError> {
        // One statement, so one round trip and its own transaction (nothing is left half-done
        // on a connection if the caller goes away). The session is touched (and locked)
        // before the family row: the family's update joins the touched session, so it cannot
        // lock the family first; an ending locks them in the same order, so a rotation racing
        // a logout waits for it instead of deadlocking. Under READ COMMITTED a concurrent
        // rotation makes the family's `generation = $6` false when it is re-checked, and
        // nothing is inserted: this call lost. The session is touched only while the swap can
        // still win (a concurrent winner touches it too).
        let swapped: i64 = sqlx::query_scalar(
            "WITH touched AS ( \
                UPDATE sessions SET last_used_at = GREATEST(last_used_at, $1) \
                WHERE sid = (SELECT sid FROM refresh_families WHERE id = $5 AND generation = $6 AND ended_at IS NULL) \
                RETURNING sid), \
             swapped AS ( \
                UPDATE refresh_families f SET generation = f.generation + 1, rotated_at = $1, sealed_successor = $2, \
                last_use_ip = $3, last_use_user_agent = $4, previous_reissued = f.current_reissued, current_reissued = FALSE \
                FROM touched WHERE f.sid = touched.sid AND f.id = $5 AND f.generation = $6 AND f.ended_at IS NULL \
                RETURNING f.id), \
             token AS ( \
                INSERT INTO refresh_tokens (token_hash, family_id, generation) SELECT $7, id, $6 + 1 FROM swapped), \
             issued AS ( \
                INSERT INTO issued_access_tokens (jti, code_hash, family_id, expires_at) \
                SELECT $8, NULL, id, $9 FROM swapped), \
             audited AS ( \
                INSERT INTO audit_events (at, kind, actor, user_id, sid, client_id, ip, user_agent, details) \
                SELECT $10, $11, $12, $13, $14, $15, $16, $17, $18 FROM swapped) \
             SELECT COUNT(*) FROM swapped",
        )
        .bind(rotation.now)
        .bind(&rotation.sealed_successor)
        .bind(&rotation.ip)
        .bind(&rotation.user_agent)
        .bind(&rotation.family_id)
        .bind(rotation.expected_generation)
        .bind(rotation.new_token_hash.as_str())
        .bind(&rotation.access_token.jti)
        .bind(rotation.access_token.expires_at)
        .bind(rotation.audit.at)
        .bind(rotation.audit.kind.as_str())
        .bind(&rotation.audit.actor)
        .bind(&rotation.audit.user_id)
        .bind(&rotation.audit.sid)
        .bind(&rotation.audit.client_id)
        .bind(&rotation.audit.ip)
        .bind(&rotation.audit.user_agent)
        .bind(rotation.audit.details.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(swapped == 1)
    }

    #[tracing::instrument(skip_all, fields(family = %family_id, generation))]
    async fn reissue_successor(
        &self,
        family_id: &str,
        generation: i64,
        audit: &AuditEvent,
        access_token: &IssuedAccessToken,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE refresh_families SET current_reissued = TRUE \
             WHERE id = $1 AND generation = $2 AND ended_at IS NULL",
        )
        .bind(family_id)
        .bind(generation)
        .execute(tx.conn())
        .await
        .map_err(unavailable)?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_issued(tx.conn(), access_token, None, Some(family_id)).await?;
        append_audit(tx.conn(), audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_grants_of_code(
        &self,
        code_hash: &CredentialHash,
        now: UnixTime,
    ) -> Result<CodeGrantsRevoked, StoreError> {
        let reason = EndReason::AuthorizationCodeReplay;
        let mut tx = self.begin().await?;
        let ended = sqlx::query("UPDATE refresh_families SET ended_at = $1, end_reason = $2 WHERE code_hash = $3 AND ended_at IS NULL")
            .bind(now)
            .bind(reason.as_str())
            .bind(code_hash.as_str())
            .execute(tx.conn())
            .await
            .map_err(unavailable)?;
        let live = sqlx::query(
            "SELECT jti, expires_at FROM issued_access_tokens WHERE expires_at > $1 AND \
             (code_hash = $2 OR family_id IN (SELECT id FROM refresh_families WHERE code_hash = $2))",
        )
        .bind(now)
        .bind(code_hash.as_str())
        .fetch_all(tx.conn())
        .await
        .map_err(unavailable)?;
        let mut revoked = 0;
        for row in live {
            let jti: String = row.try_get("jti").map_err(corrupt)?;
            let expires_at: UnixTime = row.try_get("expires_at").map_err(corrupt)?;
            if revoke_access_token_in(&mut tx, &jti, expires_at, now, reason.as_str()).await? {
                revoked += 1;
            }
        }
        tx.commit().await?;
        Ok(CodeGrantsRevoked {
            families_ended: ended.rows_affected(),
            access_tokens_revoked: revoked,
        })
    }

    #[tracing::instrument(skip_all, fields(family = %family_id))]
    async fn insert_issued_access_token(
        &self,
        family_id: &str,
        access_token: &IssuedAccessToken,
    ) -> Result<(), StoreError> {
        insert_issued(
            &mut *self.pool.acquire().await.map_err(unavailable)?,
            access_token,
            None,
            Some(family_id),
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(family = %family_id))]
    async fn end_refresh_family(
        &self,
        family_id: &str,
        now: UnixTime,
        reason: EndReason,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let ended = sqlx::query(
            "UPDATE refresh_families SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL \
             RETURNING sid, client_id",
        )
        .bind(now)
        .bind(reason.as_str())
        .bind(family_id)
        .fetch_optional(tx.conn())
        .await
        .map_err(unavailable)?;
        if let Some(row) = &ended {
            // Unless the client holds another live family there, it no longer holds tokens in
            // that session: it stops counting towards the client's session limit.
            let sid: String = row.try_get("sid").map_err(corrupt)?;
            let client_id: String = row.try_get("client_id").map_err(corrupt)?;
            sqlx::query(
                "DELETE FROM session_clients WHERE sid = $1 AND client_id = $2 AND NOT EXISTS \
                 (SELECT 1 FROM refresh_families WHERE sid = $1 AND client_id = $2 AND ended_at IS NULL)",
            )
                .bind(sid)
                .bind(client_id)
                .execute(tx.conn())
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await?;
        Ok(ended.is_some())
    }

    #[tracing::instrument(skip_all)]
    async fn insert_revoked_access_token(
        &self,
        jti: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        revoke_access_token_in(&mut tx, jti, expires_at, now, "access_token_revoked").await?;
        tx.commit().await
    }

    #[tracing::instrument(skip_all)]
    async fn list_revocations(
        &self,
        after_seq: i64,
        since: UnixTime,
        limit: u32,
    ) -> Result<Vec<RevocationEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, sid, jti, kid, revoked_at, reason FROM revocations WHERE seq > $1 AND revoked_at >= $2 \
             ORDER BY seq LIMIT $3",
        )
        .bind(after_seq)
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                Ok(RevocationEntry {
                    seq: row.try_get("seq").map_err(corrupt)?,
                    sid: row.try_get("sid").map_err(corrupt)?,
                    jti: row.try_get("jti").map_err(corrupt)?,
                    kid: row.try_get("kid").map_err(corrupt)?,
                    revoked_at: row.try_get("revoked_at").map_err(corrupt)?,
                    reason: row.try_get("reason").map_err(corrupt)?,
                })
            })
            .collect()
    }

    #[tracing::instrument(skip_all)]
    async fn latest_revocation_seq(&self) -> Result<i64, StoreError> {
        // The sequence keeps the highest seq ever issued, even after pruning. It may count a
        // seq whose transaction rolled back or has not committed yet: a little high is safe
        // (the IdP only resets readers whose cursor is beyond it).
        let row = sqlx::query(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS seq FROM revocations_seq",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        row.try_get::<i64, _>("seq").map_err(corrupt)
    }

    #[tracing::instrument(skip_all)]
    async fn claim_backchannel_deliveries(
        &self,
        now: UnixTime,
        lease: i64,
        limit: u32,
    ) -> Result<Vec<BackchannelDelivery>, StoreError> {
        // Claiming pushes next_attempt_at past the lease. Rows another instance is claiming
        // are skipped (SKIP LOCKED); rows it has just claimed fail the re-checked
        // `next_attempt_at <= now`: two instances never take the same delivery.
        let rows = sqlx::query(
            "WITH claimed AS (UPDATE backchannel_deliveries SET next_attempt_at = $1 + $2 \
             WHERE id IN (SELECT id FROM backchannel_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL \
             AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING *) \
             SELECT * FROM claimed ORDER BY id",
        )
        .bind(now)
        .bind(lease)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(delivery_from_row).collect()
    }

    #[tracing::instrument(skip_all, fields(id))]
    async fn record_backchannel_attempt(
        &self,
        id: i64,
        now: UnixTime,
        outcome: &DeliveryOutcome,
    ) -> Result<(), StoreError> {
        let query = match outcome {
            DeliveryOutcome::Delivered => sqlx::query(
                "UPDATE backchannel_deliveries SET attempts = attempts + 1, delivered_at = $1, last_error = NULL WHERE id = $2",
            )
            .bind(now)
            .bind(id),
            DeliveryOutcome::Retry { retry_at, error } => sqlx::query(
                "UPDATE backchannel_deliveries SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2 WHERE id = $3",
            )
            .bind(*retry_at)
            .bind(error.clone())
            .bind(id),
            DeliveryOutcome::GaveUp { error } => sqlx::query(
                "UPDATE backchannel_deliveries SET attempts = attempts + 1, failed_at = $1, last_error = $2 WHERE id = $3",
            )
            .bind(now)
            .bind(error.clone())
            .bind(id),
        };
        query.execute(&self.pool).await.map_err(unavailable)?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn list_undelivered_backchannel(&self) -> Result<Vec<BackchannelDelivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM backchannel_deliveries WHERE delivered_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(delivery_from_row).collect()
    }

    #[tracing::instrument(skip_all, fields(kind = event.kind.as_str()))]
    async fn insert_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
        append_audit(&self.pool, event).await
    }

    #[tracing::instrument(skip_all)]
    async fn list_audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        // Each condition is skipped when its parameter is NULL: one static statement.
        let rows = sqlx::query(
            "SELECT * FROM (SELECT * FROM audit_events \
             WHERE ($1::TEXT IS NULL OR user_id = $1) AND ($2::TEXT IS NULL OR sid = $2) \
             AND ($3::TEXT IS NULL OR kind = $3) AND ($4::BIGINT IS NULL OR at >= $4) \
             AND ($5::BIGINT IS NULL OR at < $5) ORDER BY id DESC LIMIT $6) AS newest ORDER BY id",
        )
        .bind(&filter.user_id)
        .bind(&filter.sid)
        .bind(filter.kind.map(AuditKind::as_str))
        .bind(filter.since)
        .bind(filter.until)
        .bind(i64::from(filter.limit.unwrap_or(1000)))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(audit_from_row).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM revoked_access_tokens WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(row.is_some())
    }

    #[tracing::instrument(skip_all)]
    async fn begin_login_attempt(
        &self,
        keys: &[ThrottleKey],
        now: UnixTime,
        policy: &ThrottlePolicy,
    ) -> Result<LoginAttempt, StoreError> {
        let mut tx = self.begin().await?;
        // Lock (creating empty) every counter of this attempt, in key order, so that two
        // attempts sharing counters wait for each other instead of deadlocking.
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by(|a, b| keys[*a].key.cmp(&keys[*b].key));
        let mut rows = vec![None; keys.len()];
        for index in order {
            let key = &keys[index];
            sqlx::query(
                "INSERT INTO login_counters (key, username, failures, last_failure_at, aggregated, aggregate_since, reported_at) \
                 VALUES ($1, $2, 0, 0, 0, 0, 0) ON CONFLICT (key) DO NOTHING",
            )
            .bind(&key.key)
            .bind(&key.username)
            .execute(tx.conn())
            .await
            .map_err(unavailable)?;
            let row = sqlx::query(
                "SELECT failures, last_failure_at, aggregated, aggregate_since, reported_at \
                 FROM login_counters WHERE key = $1 FOR UPDATE",
            )
            .bind(&key.key)
            .fetch_one(tx.conn())
            .await
            .map_err(unavailable)?;
            rows[index] = Some(counter_from_row(&row)?);
        }
        let plan = plan_login_attempt(keys, &rows, now, policy);
        for (index, row) in &plan.writes {
            sqlx::query(
                "UPDATE login_counters SET failures = $2, last_failure_at = $3, aggregated = $4, \
                 aggregate_since = $5, reported_at = $6 WHERE key = $1",
            )
            .bind(&keys[*index].key)
            .bind(row.failures)
            .bind(row.last_failure_at)
            .bind(row.aggregated)
            .bind(row.aggregate_since)
            .bind(row.reported_at)
            .execute(tx.conn())
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await?;
        Ok(plan.attempt)
    }

    #[tracing::instrument(skip_all)]
    async fn record_login_success(
        &self,
        keys: &[ThrottleKey],
        aggregated_into: Option<usize>,
    ) -> Result<(), StoreError> {
        let Some((first, others)) = keys.split_first() else {
            return Ok(());
        };
        let mut tx = self.begin().await?;
        // Lock the counters in key order, the order `begin_login_attempt` locks them in, so
        // that a success and a concurrent attempt wait for each other instead of deadlocking.
        let mut sorted: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
        sorted.sort_unstable();
        sqlx::query("SELECT key FROM login_counters WHERE key = ANY($1) ORDER BY key FOR UPDATE")
            .bind(&sorted)
            .fetch_all(tx.conn())
            .await
            .map_err(unavailable)?;
        sqlx::query("DELETE FROM login_counters WHERE key = $1")
            .bind(&first.key)
            .execute(tx.conn())
            .await
            .map_err(unavailable)?;
        for (index, key) in others.iter().enumerate() {
            let aggregated = i64::from(aggregated_into == Some(index + 1));
            sqlx::query(
                "UPDATE login_counters SET failures = GREATEST(failures - 1, 0), \
                 aggregated = GREATEST(aggregated - $1, 0) WHERE key = $2",
            )
            .bind(aggregated)
            .bind(&key.key)
            .execute(tx.conn())
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await
    }

    #[tracing::instrument(skip_all)]
    async fn clear_login_counters(&self, username: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM login_counters WHERE username = $1")
            .bind(username)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected())
    }

    #[tracing::instrument(skip_all, fields(job = name))]
    async fn claim_job(
        &self,
        name: &str,
        holder: &str,
        now: UnixTime,
        lease: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO job_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at \
             WHERE job_leases.expires_at <= $4 OR job_leases.holder = EXCLUDED.holder",
        )
        .bind(name)
        .bind(holder)
        .bind(now.saturating_add(lease))
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    #[tracing::instrument(skip_all)]
    async fn list_expired_sessions(
        &self,
        idle_since: UnixTime,
        absolute_since: UnixTime,
        limit: u32,
    ) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM sessions WHERE ended_at IS NULL AND (last_used_at <= $1 OR created_at <= $2) \
             ORDER BY last_used_at LIMIT $3",
        )
        .bind(idle_since)
        .bind(absolute_since)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(session_from_row).collect()
    }

    #[tracing::instrument(skip_all, fields(what = what.as_str()))]
    async fn prune(&self, what: Prunable, before: UnixTime, limit: u32) -> Result<u64, StoreError> {
        let limit = i64::from(limit);
        let mut tx = self.begin().await?;
        let deleted = match what {
            Prunable::EndedSessions => {
                // Sessions ended long ago: nothing else locks them any more, but skip any that
                // something still holds, rather than wait.
                let sids: Vec<String> = sqlx::query_scalar(
                    "SELECT sid FROM sessions WHERE ended_at < $1 ORDER BY ended_at LIMIT $2 \
                     FOR UPDATE SKIP LOCKED",
                )
                .bind(before)
                .bind(limit)
                .fetch_all(tx.conn())
                .await
                .map_err(unavailable)?;
                // Everything of the sessions first, then the sessions (foreign keys).
                for statement in [
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
                ] {
                    sqlx::query(statement)
                        .bind(&sids)
                        .execute(tx.conn())
                        .await
                        .map_err(unavailable)?;
                }
                sids.len() as u64
            }
            Prunable::AuditEvents => delete_batch(&mut tx, "DELETE FROM audit_events WHERE id IN \
                (SELECT id FROM audit_events WHERE at < $1 ORDER BY id LIMIT $2)", before, limit).await?,
            Prunable::AuthorizationCodes => delete_batch(&mut tx, "DELETE FROM authorization_codes WHERE code_hash IN \
                (SELECT code_hash FROM authorization_codes WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)", before, limit).await?,
            Prunable::AccessTokens => {
                delete_batch(&mut tx, "DELETE FROM issued_access_tokens WHERE jti IN \
                    (SELECT jti FROM issued_access_tokens WHERE expires_at < $1 LIMIT $2)", before, limit).await?
                    + delete_batch(&mut tx, "DELETE FROM revoked_access_tokens WHERE jti IN \
                    (SELECT jti FROM revoked_access_tokens WHERE expires_at < $1 LIMIT $2)", before, limit).await?
            }
            Prunable::Revocations => delete_batch(&mut tx, "DELETE FROM revocations WHERE seq IN \
                (SELECT seq FROM revocations WHERE revoked_at < $1 ORDER BY seq LIMIT $2)", before, limit).await?,
            Prunable::BackchannelDeliveries => delete_batch(&mut tx, "DELETE FROM backchannel_deliveries WHERE id IN \
                (SELECT id FROM backchannel_deliveries WHERE COALESCE(delivered_at, failed_at) < $1 LIMIT $2 \
                 FOR UPDATE SKIP LOCKED)", before, limit).await?,
        };
        tx.commit().await?;
        Ok(deleted)
    }

    #[tracing::instrument(skip_all)]
    async fn prune_login_counters(
        &self,
        before: UnixTime,
        limit: u32,
    ) -> Result<(u64, Vec<ThrottleReport>), StoreError> {
        let mut tx = self.begin().await?;
        // Counters an attempt holds right now are skipped: they are not forgotten after all.
        let rows = sqlx::query(
            "SELECT key, failures, last_failure_at, aggregated, aggregate_since, reported_at \
             FROM login_counters WHERE last_failure_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(tx.conn())
        .await
        .map_err(unavailable)?;
        let mut forgotten = Vec::with_capacity(rows.len());
        for row in &rows {
            let key: String = row.try_get("key").map_err(corrupt)?;
            forgotten.push((key, counter_from_row(row)?));
        }
        let keys: Vec<&str> = forgotten.iter().map(|(key, _)| key.as_str()).collect();
        sqlx::query("DELETE FROM login_counters WHERE key = ANY($1)")
            .bind(&keys)
            .execute(tx.conn())
            .await
            .map_err(unavailable)?;
        tx.commit().await?;
        Ok((forgotten.len() as u64, leftover_reports(&forgotten)))
    }

    #[tracing::instrument(skip_all)]
    async fn row_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut counts = Vec::with_capacity(TABLES.len());
        for table in TABLES {
            let count: i64 =
                sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(unavailable)?;
            counts.push((
                (*table).to_owned(),
                u64::try_from(count).unwrap_or_default(),
            ));
        }
        Ok(counts)
    }

    async fn listen_for_revocations(
        &self,
        wake: std::sync::Arc<tokio::sync::Notify>,
    ) -> Result<bool, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool)
            .await
            .map_err(unavailable)?;
        listener
            .listen(REVOCATIONS_CHANNEL)
            .await
            .map_err(unavailable)?;
        let pool = self.pool.clone();
        tokio::spawn(async move {
            // `recv` reconnects by itself after a lost connection (and wakes the readers then,
            // since notifications sent meanwhile are lost: they re-read from their cursors).
            loop {
                if pool.is_closed() {
                    return;
                }
                match listener.try_recv().await {
                    Ok(Some(_)) => wake.notify_waiters(),
                    Ok(None) => {
                        tracing::warn!("revocation notifications: connection lost; reconnecting");
                        wake.notify_waiters();
                    }
                    Err(error) => {
                        tracing::warn!(%error, "revocation notifications failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(true)
    }

    #[tracing::instrument(skip_all)]
    async fn check_ready(&self) -> Result<(), StoreError> {
        let applied = self.applied_migration().await.map_err(unavailable)?;
        schema_status(applied, MIGRATIONS)
    }
}
