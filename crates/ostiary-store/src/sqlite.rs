//! The SQLite implementation of [`Store`].
//!
//! Writes that must be atomic run in `BEGIN IMMEDIATE` transactions, so that the write lock is
//! taken up front and waits (busy timeout 5 s) instead of failing midway. The refresh rotation
//! is a compare-and-swap: `UPDATE … WHERE generation = expected`, and only the caller that
//! changed a row won.

use std::str::FromStr;
use std::sync::{Arc, LazyLock};
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
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row, SqlitePool};

use crate::OpenError;
use crate::rows::{
    FAMILY_COLUMNS, REFRESH_GRANT_SELECT, audit_from_row, client_from_row, code_from_row,
    counter_from_row, delivery_from_row, family_from_row, refresh_grant_from_row, session_from_row,
    user_from_row,
};
use crate::shared::{
    LimitDecision, TABLES, corrupt, describe, invalid_url, is_unique_violation, json_list,
    leftover_reports, limit_decision, log_opened, migration_failed, migrator, plan_login_attempt,
    policy_json, schema_status, unavailable,
};
use crate::sqlite_writer::{self, Readers, Writer};

/// The embedded migrations, in order.
#[rustfmt::skip]
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/sqlite/0001_init.sql")),
    (2, "revocations", include_str!("../migrations/sqlite/0002_revocations.sql")),
    (3, "audit", include_str!("../migrations/sqlite/0003_audit.sql")),
    (4, "backchannel", include_str!("../migrations/sqlite/0004_backchannel.sql")),
    (5, "refresh_use_origin", include_str!("../migrations/sqlite/0005_refresh_use_origin.sql")),
    (6, "client_policy", include_str!("../migrations/sqlite/0006_client_policy.sql")),
    (7, "login_failures", include_str!("../migrations/sqlite/0007_login_failures.sql")),
    (8, "key_lifecycle", include_str!("../migrations/sqlite/0008_key_lifecycle.sql")),
    (9, "hardening", include_str!("../migrations/sqlite/0009_hardening.sql")),
];

/// Ostiary's storage on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The refresh grant's writes: one connection on one thread, group commit.
    writer: Writer,
    /// The refresh grant's read, on the calling thread.
    readers: Arc<Readers>,
    /// The directory of a `sqlite::memory:` database (a private file, deleted with the last
    /// handle), so that the writer thread can share it.
    _temporary: Option<Arc<tempfile::TempDir>>,
}

/// The connection options a `sqlite:` URL names, before Ostiary's own (an error if the URL
/// does not parse).
pub(crate) fn connect_options(url: &str) -> Result<SqliteConnectOptions, OpenError> {
    SqliteConnectOptions::from_str(url)
        .map_err(|e| invalid_url("SQLite", "sqlite://PATH or sqlite::memory:", &e))
}

impl SqliteStore {
    /// Opens (creating if missing) the database at a `sqlite:` URL and applies migrations.
    pub async fn connect(url: &str) -> Result<Self, OpenError> {
        Self::connect_with(url, true).await
    }

    /// Opens the database at a `sqlite:` URL, applying migrations if `migrate`. A missing
    /// file is created (readable by its owner only), in a directory that must exist
    /// ([`OpenError::MissingDirectory`]). Logs which file is in use and whether it was empty.
    pub async fn connect_with(url: &str, migrate: bool) -> Result<Self, OpenError> {
        // An in-memory database would exist per connection; the writer thread needs to share
        // it, so it is a private temporary file instead, gone when the store is dropped.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let (temporary, options) = if in_memory {
            let dir = tempfile::Builder::new()
                .prefix("ostiary-memory-")
                .tempdir()
                .map_err(|e| OpenError::Database(format!("a temporary database: {e}")))?;
            let options = SqliteConnectOptions::new().filename(dir.path().join("ostiary.db"));
            (Some(Arc::new(dir)), options)
        } else {
            (None, connect_options(url)?)
        };
        let options = options
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            .synchronous(SqliteSynchronous::Full)
            .journal_mode(SqliteJournalMode::Wal);
        let file = options.get_filename().to_owned();
        let shown = if in_memory {
            url.to_owned()
        } else {
            create_private_file(&file)?;
            let file = std::path::absolute(&file).unwrap_or_else(|_| file.clone());
            format!("sqlite://{}", file.display())
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(0)
            // A broken connection shows as the error of the statement that meets it; a ping
            // per checkout would cost a round trip to the connection's thread every time.
            .test_before_acquire(false)
            .idle_timeout(Some(Duration::from_secs(600)))
            .max_lifetime(Some(Duration::from_secs(3600)))
            .connect_with(options)
            .await
            .map_err(|e| OpenError::Database(format!("{shown}: {}", describe(&e))))?;
        let writer =
            Writer::open(&file).map_err(|e| OpenError::Database(format!("{shown}: {e}")))?;
        let store = Self {
            pool,
            writer,
            readers: Arc::new(Readers::new(&file)),
            _temporary: temporary,
        };
        let applied = store
            .applied_migration()
            .await
            .map_err(|e| OpenError::Database(format!("{shown}: {}", describe(&e))))?;
        if migrate {
            store.migrate().await?;
        }
        log_opened(&shown, applied.is_none(), migrate);
        Ok(store)
    }

    /// A fresh in-memory database (for fast tests).
    pub async fn in_memory() -> Result<Self, OpenError> {
        Self::connect("sqlite::memory:").await
    }

    async fn migrate(&self) -> Result<(), OpenError> {
        migrator(MIGRATIONS)
            .run(&self.pool)
            .await
            .map_err(migration_failed)
    }

    /// The last migration applied, `None` on a database without Ostiary's schema.
    async fn applied_migration(&self) -> Result<Option<i64>, sqlx::Error> {
        let tracked: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(&self.pool)
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

    async fn begin_immediate(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)
    }
}

/// Creates the database file readable and writable by its owner only (0600), before SQLite
/// would create it with the process umask: it holds the signing keys. SQLite gives its `-wal`
/// and `-shm` files the same permissions as the database file. The directory must exist:
/// creating it would turn a mistyped path into a fresh, empty identity provider.
fn create_private_file(path: &std::path::Path) -> Result<(), OpenError> {
    if path.exists() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.is_dir()
    {
        return Err(OpenError::MissingDirectory(
            std::path::absolute(parent).unwrap_or_else(|_| parent.to_owned()),
        ));
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(OpenError::Database(format!(
            "cannot create {}: {}",
            path.display(),
            describe(&sqlx::Error::Io(e))
        ))),
    }
}

/// Ends one session and every refresh family in it, and publishes its `sid`, inside the
/// caller's transaction. `false` (and nothing published) if it had already ended.
async fn end_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    sid: &str,
    now: UnixTime,
    reason: EndReason,
) -> Result<bool, StoreError> {
    let ended = sqlx::query(
        "UPDATE sessions SET ended_at = ?, end_reason = ? WHERE sid = ? AND ended_at IS NULL RETURNING user_id",
    )
    .bind(now)
    .bind(reason.as_str())
    .bind(sid)
    .fetch_optional(&mut **tx)
    .await
    .map_err(unavailable)?;
    let Some(row) = ended else {
        return Ok(false);
    };
    let user_id: String = row.try_get("user_id").map_err(corrupt)?;
    append_audit(
        &mut **tx,
        &AuditEvent::session_ended(now, sid, &user_id, reason),
    )
    .await?;
    sqlx::query("UPDATE refresh_families SET ended_at = ?, end_reason = ? WHERE sid = ? AND ended_at IS NULL")
        .bind(now)
        .bind(reason.as_str())
        .bind(sid)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    publish(tx, Some(sid), None, now, reason.as_str()).await?;
    // Back-channel logout is owed to every client with a logout endpoint that had tokens in
    // the session (it redeemed a code of it); queued here, so it survives a restart.
    sqlx::query(
        "INSERT INTO backchannel_deliveries (client_id, sid, uri, next_attempt_at, created_at) \
         SELECT c.id, ?1, c.backchannel_logout_uri, ?2, ?2 FROM clients c \
         WHERE c.backchannel_logout_uri IS NOT NULL \
         AND c.id IN (SELECT client_id FROM session_clients WHERE sid = ?1 \
         UNION SELECT client_id FROM authorization_codes WHERE sid = ?1 AND used_at IS NOT NULL)",
    )
    .bind(sid)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(unavailable)?;
    Ok(true)
}

/// Ends the sessions in `rows` (a `sid` column) to admit `by_sid` under a session limit, and
/// audits each eviction; returns the ended `sid`s.
async fn evict(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    rows: &[sqlx::sqlite::SqliteRow],
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
            append_audit(&mut **tx, &event).await?;
            evicted.push(sid);
        }
    }
    Ok(evicted)
}

/// Stores a signing key, inside the caller's transaction or on its own.
async fn insert_key<'e>(
    executor: impl sqlx::SqliteExecutor<'e>,
    key: &StoredKey,
) -> Result<(), StoreError> {
    use secrecy::ExposeSecret as _;
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, private_pkcs8, created_at, activates_at) VALUES (?, ?, ?, ?, ?)",
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

/// Appends an audit event, inside the caller's transaction or on its own.
async fn append_audit<'e>(
    executor: impl sqlx::SqliteExecutor<'e>,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_events (at, kind, actor, user_id, sid, client_id, ip, user_agent, details) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

/// Appends an entry to the revocation feed, inside the caller's transaction.
async fn publish(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    sid: Option<&str>,
    jti: Option<&str>,
    now: UnixTime,
    reason: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO revocations (sid, jti, revoked_at, reason) VALUES (?, ?, ?, ?)")
        .bind(sid)
        .bind(jti)
        .bind(now)
        .bind(reason)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// Records an access token minted from a code or a family, inside the caller's transaction.
async fn insert_issued(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    token: &IssuedAccessToken,
    code_hash: Option<&CredentialHash>,
    family_id: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO issued_access_tokens (jti, code_hash, family_id, expires_at) VALUES (?, ?, ?, ?)",
    )
    .bind(&token.jti)
    .bind(code_hash.map(CredentialHash::as_str))
    .bind(family_id)
    .bind(token.expires_at)
    .execute(&mut **tx)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// Records an access token as revoked until it expires and publishes its `jti`, inside the
/// caller's transaction; `false` (nothing published) if it already was.
async fn revoke_access_token_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    jti: &str,
    expires_at: UnixTime,
    now: UnixTime,
    reason: &str,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING",
    )
    .bind(jti)
    .bind(expires_at)
    .execute(&mut **tx)
    .await
    .map_err(unavailable)?;
    if inserted.rows_affected() == 1 {
        publish(tx, None, Some(jti), now, reason).await?;
    }
    Ok(inserted.rows_affected() == 1)
}

/// Runs a `DELETE … WHERE … IN (SELECT … WHERE cut-off < ? LIMIT ?)` in the caller's
/// transaction; returns how many rows went.
async fn delete_batch(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    statement: &'static str,
    before: UnixTime,
    limit: i64,
) -> Result<u64, StoreError> {
    let done = sqlx::query(statement)
        .bind(before)
        .bind(limit)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    Ok(done.rows_affected())
}

/// [`REFRESH_GRANT_SELECT`] for one token hash.
static REFRESH_GRANT_BY_HASH: LazyLock<String> =
    LazyLock::new(|| format!("{REFRESH_GRANT_SELECT} WHERE t.token_hash = ?1"));

/// The rotation's compare-and-swap and everything that goes with it (the new token's hash,
/// the session touched, the access token recorded, the audit event), on the writer's
/// connection inside its batch. `false` if the family was not at the expected generation (or
/// had ended): then nothing was changed.
fn rotate_in(connection: &rusqlite::Connection, rotation: &Rotation) -> Result<bool, StoreError> {
    use rusqlite::{OptionalExtension, params};
    let fail = sqlite_writer::unavailable;
    let sid: Option<String> = connection
        .prepare_cached(
            "UPDATE refresh_families SET generation = generation + 1, rotated_at = ?1, sealed_successor = ?2, \
             last_use_ip = ?3, last_use_user_agent = ?4, previous_reissued = current_reissued, current_reissued = FALSE \
             WHERE id = ?5 AND generation = ?6 AND ended_at IS NULL RETURNING sid",
        )
        .map_err(fail)?
        .query_row(
            params![
                rotation.now,
                rotation.sealed_successor,
                rotation.ip,
                rotation.user_agent,
                rotation.family_id,
                rotation.expected_generation,
            ],
            |row| row.get(0),
        )
        .optional()
        .map_err(fail)?;
    let Some(sid) = sid else {
        return Ok(false);
    };
    connection
        .prepare_cached(
            "INSERT INTO refresh_tokens (token_hash, family_id, generation) VALUES (?1, ?2, ?3)",
        )
        .map_err(fail)?
        .execute(params![
            rotation.new_token_hash.as_str(),
            rotation.family_id,
            rotation.expected_generation + 1,
        ])
        .map_err(fail)?;
    connection
        // Only when the time moved on (it is kept in seconds): a session refreshed many times
        // a second is written once, its row and its index entry by time with it.
        .prepare_cached(
            "UPDATE sessions SET last_used_at = ?1 WHERE sid = ?2 AND last_used_at < ?1",
        )
        .map_err(fail)?
        .execute(params![rotation.now, sid])
        .map_err(fail)?;
    connection
        .prepare_cached(
            "INSERT INTO issued_access_tokens (jti, code_hash, family_id, expires_at) VALUES (?1, NULL, ?2, ?3)",
        )
        .map_err(fail)?
        .execute(params![
            rotation.access_token.jti,
            rotation.family_id,
            rotation.access_token.expires_at,
        ])
        .map_err(fail)?;
    let event = &rotation.audit;
    connection
        .prepare_cached(
            "INSERT INTO audit_events (at, kind, actor, user_id, sid, client_id, ip, user_agent, details) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(fail)?
        .execute(params![
            event.at,
            event.kind.as_str(),
            event.actor,
            event.user_id,
            event.sid,
            event.client_id,
            event.ip,
            event.user_agent,
            event.details.to_string(),
        ])
        .map_err(fail)?;
    Ok(true)
}

#[async_trait]
impl Store for SqliteStore {
    #[tracing::instrument(skip_all)]
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO users (id, username, password_hash, disabled, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&user.id)
            .bind(user.username.as_str())
            .bind(user.password_hash.as_str())
            .bind(i64::from(user.disabled))
            .bind(user.created_at)
            .execute(&self.pool)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("username") } else { unavailable(e) })?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn find_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(user_from_row).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn find_user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE username = ?")
            .bind(username.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(user_from_row).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY username")
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
        let done = sqlx::query("UPDATE users SET disabled = ? WHERE username = ?")
            .bind(i64::from(disabled))
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
        let done = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
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
             extra_scopes, web_origins, backchannel_logout_uri, policy, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        let row = sqlx::query("SELECT * FROM clients WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(client_from_row).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        let rows = sqlx::query("SELECT * FROM clients ORDER BY id")
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
        let done = sqlx::query("UPDATE clients SET policy = ? WHERE id = ?")
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
            "SELECT kid, alg, private_pkcs8, created_at, activates_at FROM signing_keys ORDER BY activates_at, created_at",
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
        let mut tx = self.begin_immediate().await?;
        let pending = sqlx::query("SELECT 1 FROM signing_keys WHERE alg = ? AND activates_at > ?")
            .bind(key.alg.as_str())
            .bind(after)
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
        if pending.is_some() {
            tx.rollback().await.map_err(unavailable)?;
            return Ok(false);
        }
        insert_key(&mut *tx, key).await?;
        tx.commit().await.map_err(unavailable)?;
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
        let mut tx = self.begin_immediate().await?;
        for key in keys {
            sqlx::query(
                "INSERT INTO signing_keys (kid, alg, private_pkcs8, created_at, activates_at) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (kid) DO UPDATE SET private_pkcs8 = excluded.private_pkcs8",
            )
            .bind(&key.kid)
            .bind(key.alg.as_str())
            .bind(key.private_pkcs8.expose_secret().to_vec())
            .bind(key.created_at)
            .bind(key.activates_at)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        for kid in withdraw {
            let gone = sqlx::query("DELETE FROM signing_keys WHERE kid = ?")
                .bind(kid)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            if gone.rows_affected() == 1 {
                sqlx::query(
                    "INSERT INTO revocations (kid, revoked_at, reason) VALUES (?, ?, 'signing_key_withdrawn')",
                )
                .bind(kid)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            }
        }
        for event in audit {
            append_audit(&mut *tx, event).await?;
        }
        tx.commit().await.map_err(unavailable)
    }

    #[tracing::instrument(skip_all, fields(kid = %kid))]
    async fn delete_signing_key(&self, kid: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM signing_keys WHERE kid = ?")
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
        let mut tx = self.begin_immediate().await?;
        let mut evicted = Vec::new();
        if limit.max > 0 {
            let rows = sqlx::query(
                "SELECT sid FROM sessions WHERE user_id = ? AND ended_at IS NULL AND last_used_at > ? AND created_at > ? \
                 ORDER BY created_at DESC, sid",
            )
            .bind(&session.user_id)
            .bind(limit.idle_since)
            .bind(limit.absolute_since)
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable)?;
            match limit_decision(&limit, rows.len()) {
                LimitDecision::Admit => {}
                LimitDecision::Refuse => {
                    tx.rollback().await.map_err(unavailable)?;
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
             user_agent, ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        append_audit(&mut *tx, audit).await?;
        tx.commit().await.map_err(unavailable)?;
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
        let mut tx = self.begin_immediate().await?;
        let known = sqlx::query("SELECT 1 FROM session_clients WHERE sid = ? AND client_id = ?")
            .bind(sid)
            .bind(client_id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
        let mut evicted = Vec::new();
        if known.is_none() && limit.max > 0 {
            let rows = sqlx::query(
                "SELECT s.sid FROM session_clients sc JOIN sessions s ON s.sid = sc.sid \
                 WHERE sc.user_id = ? AND sc.client_id = ? AND s.sid <> ? AND s.ended_at IS NULL \
                 AND s.last_used_at > ? AND s.created_at > ? ORDER BY s.created_at DESC, s.sid",
            )
            .bind(user_id)
            .bind(client_id.as_str())
            .bind(sid)
            .bind(limit.idle_since)
            .bind(limit.absolute_since)
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable)?;
            match limit_decision(&limit, rows.len()) {
                LimitDecision::Admit => {}
                LimitDecision::Refuse => {
                    tx.rollback().await.map_err(unavailable)?;
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
            "INSERT INTO session_clients (sid, client_id, user_id, first_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (sid, client_id) DO NOTHING",
        )
        .bind(sid)
        .bind(client_id.as_str())
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(SessionAdmission::Admitted { evicted })
    }

    #[tracing::instrument(skip_all, fields(sid = %sid))]
    async fn find_session(&self, sid: &str) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE sid = ?")
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
        let row = sqlx::query("SELECT * FROM sessions WHERE cookie_hash = ?")
            .bind(cookie_hash.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(session_from_row).transpose()
    }

    #[tracing::instrument(skip_all, fields(sid = %sid))]
    async fn touch_session(&self, sid: &str, now: UnixTime) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET last_used_at = MAX(last_used_at, ?) WHERE sid = ? AND ended_at IS NULL")
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
        let mut tx = self.begin_immediate().await?;
        if let Some(cause) = cause {
            append_audit(&mut *tx, cause).await?;
        }
        let ended = end_in(&mut tx, sid, now, reason).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(ended)
    }

    #[tracing::instrument(skip_all, fields(user_id = %user_id, reason = reason.as_str()))]
    async fn end_sessions_of_user(
        &self,
        user_id: &str,
        now: UnixTime,
        reason: EndReason,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.begin_immediate().await?;
        let rows = sqlx::query("SELECT sid FROM sessions WHERE user_id = ? AND ended_at IS NULL")
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable)?;
        let mut ended = Vec::with_capacity(rows.len());
        for row in &rows {
            let sid: String = row.try_get("sid").map_err(corrupt)?;
            if end_in(&mut tx, &sid, now, reason).await? {
                ended.push(sid);
            }
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(ended)
    }

    #[tracing::instrument(skip_all)]
    async fn list_active_sessions(
        &self,
        user_id: Option<&str>,
    ) -> Result<Vec<(Session, Vec<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.*, (SELECT group_concat(DISTINCT f.client_id) FROM refresh_families f \
             WHERE f.sid = s.sid AND f.ended_at IS NULL) AS clients \
             FROM sessions s WHERE s.ended_at IS NULL AND (?1 IS NULL OR s.user_id = ?1) \
             ORDER BY s.created_at DESC, s.sid",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let clients: Option<String> = row.try_get("clients").map_err(corrupt)?;
                let clients = clients
                    .map(|c| c.split(',').map(str::to_owned).collect())
                    .unwrap_or_default();
                Ok((session_from_row(row)?, clients))
            })
            .collect()
    }

    #[tracing::instrument(skip_all)]
    async fn insert_authorization_code(&self, code: &AuthorizationCode) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, client_id, redirect_uri, sid, user_id, scope, resource, \
             code_challenge, nonce, auth_time, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        let mut tx = self.begin_immediate().await?;
        let won = sqlx::query(
            "UPDATE authorization_codes SET used_at = ? \
             WHERE code_hash = ? AND client_id = ? AND used_at IS NULL RETURNING *",
        )
        .bind(now)
        .bind(code_hash.as_str())
        .bind(client_id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        if let Some(row) = won {
            insert_issued(&mut tx, access_token, Some(code_hash), None).await?;
            tx.commit().await.map_err(unavailable)?;
            return Ok(CodeConsumption::First(code_from_row(&row)?));
        }
        let seen = sqlx::query("SELECT * FROM authorization_codes WHERE code_hash = ?")
            .bind(code_hash.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.rollback().await.map_err(unavailable)?;
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
        let mut tx = self.begin_immediate().await?;
        sqlx::query(
            "INSERT INTO refresh_families (id, sid, client_id, user_id, scope, resource, generation, rotated_at, \
             sealed_successor, created_at, ended_at, end_reason, code_hash, last_use_ip, last_use_user_agent) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, generation) VALUES (?, ?, ?)",
        )
        .bind(first_token.as_str())
        .bind(&family.id)
        .bind(family.generation)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn find_refresh_token(
        &self,
        token_hash: &CredentialHash,
    ) -> Result<Option<(RefreshFamily, i64)>, StoreError> {
        let sql = format!(
            "SELECT {FAMILY_COLUMNS}, t.generation AS token_generation FROM refresh_tokens t \
             JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = ?"
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
        let hash = token_hash.as_str();
        self.readers.read(|connection| {
            let mut statement = connection
                .prepare_cached(&REFRESH_GRANT_BY_HASH)
                .map_err(sqlite_writer::unavailable)?;
            let mut rows = statement
                .query([hash])
                .map_err(sqlite_writer::unavailable)?;
            rows.next()
                .map_err(sqlite_writer::unavailable)?
                .map(refresh_grant_from_row)
                .transpose()
        })
    }

    #[tracing::instrument(skip_all, fields(family = %family_id))]
    async fn find_refresh_family(
        &self,
        family_id: &str,
    ) -> Result<Option<RefreshFamily>, StoreError> {
        let sql = format!("SELECT {FAMILY_COLUMNS} FROM refresh_families f WHERE f.id = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(family_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(family_from_row).transpose()
    }

    #[tracing::instrument(skip_all, fields(family = %rotation.family_id, generation = rotation.expected_generation))]
    async fn rotate_refresh(&self, rotation: &Rotation) -> Result<bool, StoreError> {
        // On the writer thread, in a batch with the rotations that arrive meanwhile.
        let rotation = rotation.clone();
        self.writer
            .write(
                move |connection| rotate_in(connection, &rotation),
                |won| *won,
            )
            .await
    }

    #[tracing::instrument(skip_all, fields(family = %family_id, generation))]
    async fn reissue_successor(
        &self,
        family_id: &str,
        generation: i64,
        audit: &AuditEvent,
        access_token: &IssuedAccessToken,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_immediate().await?;
        let done = sqlx::query(
            "UPDATE refresh_families SET current_reissued = TRUE \
             WHERE id = ? AND generation = ? AND ended_at IS NULL",
        )
        .bind(family_id)
        .bind(generation)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        if done.rows_affected() != 1 {
            tx.rollback().await.map_err(unavailable)?;
            return Ok(false);
        }
        insert_issued(&mut tx, access_token, None, Some(family_id)).await?;
        append_audit(&mut *tx, audit).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_grants_of_code(
        &self,
        code_hash: &CredentialHash,
        now: UnixTime,
    ) -> Result<CodeGrantsRevoked, StoreError> {
        let reason = EndReason::AuthorizationCodeReplay;
        let mut tx = self.begin_immediate().await?;
        let ended = sqlx::query("UPDATE refresh_families SET ended_at = ?, end_reason = ? WHERE code_hash = ? AND ended_at IS NULL")
            .bind(now)
            .bind(reason.as_str())
            .bind(code_hash.as_str())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        let live = sqlx::query(
            "SELECT jti, expires_at FROM issued_access_tokens WHERE expires_at > ?1 AND \
             (code_hash = ?2 OR family_id IN (SELECT id FROM refresh_families WHERE code_hash = ?2))",
        )
        .bind(now)
        .bind(code_hash.as_str())
        .fetch_all(&mut *tx)
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
        tx.commit().await.map_err(unavailable)?;
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
        let mut tx = self.begin_immediate().await?;
        insert_issued(&mut tx, access_token, None, Some(family_id)).await?;
        tx.commit().await.map_err(unavailable)
    }

    #[tracing::instrument(skip_all, fields(family = %family_id))]
    async fn end_refresh_family(
        &self,
        family_id: &str,
        now: UnixTime,
        reason: EndReason,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_immediate().await?;
        let ended = sqlx::query(
            "UPDATE refresh_families SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL \
             RETURNING sid, client_id",
        )
        .bind(now)
        .bind(reason.as_str())
        .bind(family_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        if let Some(row) = &ended {
            // Unless the client holds another live family there, it no longer holds tokens in
            // that session: it stops counting towards the client's session limit.
            let sid: String = row.try_get("sid").map_err(corrupt)?;
            let client_id: String = row.try_get("client_id").map_err(corrupt)?;
            sqlx::query(
                "DELETE FROM session_clients WHERE sid = ?1 AND client_id = ?2 AND NOT EXISTS \
                 (SELECT 1 FROM refresh_families WHERE sid = ?1 AND client_id = ?2 AND ended_at IS NULL)",
            )
                .bind(sid)
                .bind(client_id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(ended.is_some())
    }

    #[tracing::instrument(skip_all)]
    async fn insert_revoked_access_token(
        &self,
        jti: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_immediate().await?;
        revoke_access_token_in(&mut tx, jti, expires_at, now, "access_token_revoked").await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn list_revocations(
        &self,
        after_seq: i64,
        since: UnixTime,
        limit: u32,
    ) -> Result<Vec<RevocationEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, sid, jti, kid, revoked_at, reason FROM revocations WHERE seq > ? AND revoked_at >= ? ORDER BY seq LIMIT ?",
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
        // AUTOINCREMENT keeps the highest seq ever issued in sqlite_sequence, even after pruning.
        let row = sqlx::query("SELECT seq FROM sqlite_sequence WHERE name = 'revocations'")
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map_or(Ok(0), |row| row.try_get::<i64, _>("seq").map_err(corrupt))
    }

    #[tracing::instrument(skip_all)]
    async fn claim_backchannel_deliveries(
        &self,
        now: UnixTime,
        lease: i64,
        limit: u32,
    ) -> Result<Vec<BackchannelDelivery>, StoreError> {
        // Claiming pushes next_attempt_at past the lease in the statement that selects: two
        // instances never take the same delivery at once.
        let rows = sqlx::query(
            "UPDATE backchannel_deliveries SET next_attempt_at = ?1 + ?2 \
             WHERE id IN (SELECT id FROM backchannel_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL \
             AND next_attempt_at <= ?1 ORDER BY next_attempt_at LIMIT ?3) RETURNING *",
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
                "UPDATE backchannel_deliveries SET attempts = attempts + 1, delivered_at = ?, last_error = NULL WHERE id = ?",
            )
            .bind(now)
            .bind(id),
            DeliveryOutcome::Retry { retry_at, error } => sqlx::query(
                "UPDATE backchannel_deliveries SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?",
            )
            .bind(*retry_at)
            .bind(error.clone())
            .bind(id),
            DeliveryOutcome::GaveUp { error } => sqlx::query(
                "UPDATE backchannel_deliveries SET attempts = attempts + 1, failed_at = ?, last_error = ? WHERE id = ?",
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
             WHERE (?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR sid = ?2) AND (?3 IS NULL OR kind = ?3) \
             AND (?4 IS NULL OR at >= ?4) AND (?5 IS NULL OR at < ?5) ORDER BY id DESC LIMIT ?6) ORDER BY id",
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
        let row = sqlx::query("SELECT 1 FROM revoked_access_tokens WHERE jti = ?")
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
        let mut tx = self.begin_immediate().await?;
        let mut rows = Vec::with_capacity(keys.len());
        for key in keys {
            let row = sqlx::query("SELECT failures, last_failure_at, aggregated, aggregate_since, reported_at FROM login_counters WHERE key = ?")
                .bind(&key.key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
            rows.push(row.as_ref().map(counter_from_row).transpose()?);
        }
        let plan = plan_login_attempt(keys, &rows, now, policy);
        for (index, row) in &plan.writes {
            let key = &keys[*index];
            sqlx::query(
                "INSERT INTO login_counters (key, username, failures, last_failure_at, aggregated, aggregate_since, reported_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, \
                 last_failure_at = excluded.last_failure_at, aggregated = excluded.aggregated, \
                 aggregate_since = excluded.aggregate_since, reported_at = excluded.reported_at",
            )
            .bind(&key.key)
            .bind(&key.username)
            .bind(row.failures)
            .bind(row.last_failure_at)
            .bind(row.aggregated)
            .bind(row.aggregate_since)
            .bind(row.reported_at)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
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
        let mut tx = self.begin_immediate().await?;
        sqlx::query("DELETE FROM login_counters WHERE key = ?")
            .bind(&first.key)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        for (index, key) in others.iter().enumerate() {
            let aggregated = i64::from(aggregated_into == Some(index + 1));
            sqlx::query(
                "UPDATE login_counters SET failures = MAX(failures - 1, 0), \
                 aggregated = MAX(aggregated - ?, 0) WHERE key = ?",
            )
            .bind(aggregated)
            .bind(&key.key)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    #[tracing::instrument(skip_all)]
    async fn clear_login_counters(&self, username: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM login_counters WHERE username = ?")
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
            "INSERT INTO job_leases (name, holder, expires_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE job_leases.expires_at <= ?4 OR job_leases.holder = excluded.holder",
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
            "SELECT * FROM sessions WHERE ended_at IS NULL AND (last_used_at <= ? OR created_at <= ?) \
             ORDER BY last_used_at LIMIT ?",
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
        let mut tx = self.begin_immediate().await?;
        let deleted = match what {
            Prunable::EndedSessions => {
                let sids: Vec<String> = sqlx::query_scalar(
                    "SELECT sid FROM sessions WHERE ended_at < ? ORDER BY ended_at LIMIT ?",
                )
                .bind(before)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await
                .map_err(unavailable)?;
                let batch = json_list(&sids);
                // Everything of the sessions first, then the sessions (foreign keys).
                for statement in [
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
                ] {
                    sqlx::query(statement)
                        .bind(&batch)
                        .execute(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                }
                sids.len() as u64
            }
            Prunable::AuditEvents => delete_batch(&mut tx, "DELETE FROM audit_events WHERE id IN \
                (SELECT id FROM audit_events WHERE at < ? ORDER BY id LIMIT ?)", before, limit).await?,
            Prunable::AuthorizationCodes => delete_batch(&mut tx, "DELETE FROM authorization_codes WHERE code_hash IN \
                (SELECT code_hash FROM authorization_codes WHERE expires_at < ? LIMIT ?)", before, limit).await?,
            Prunable::AccessTokens => {
                delete_batch(&mut tx, "DELETE FROM issued_access_tokens WHERE jti IN \
                    (SELECT jti FROM issued_access_tokens WHERE expires_at < ? LIMIT ?)", before, limit).await?
                    + delete_batch(&mut tx, "DELETE FROM revoked_access_tokens WHERE jti IN \
                    (SELECT jti FROM revoked_access_tokens WHERE expires_at < ? LIMIT ?)", before, limit).await?
            }
            Prunable::Revocations => delete_batch(&mut tx, "DELETE FROM revocations WHERE seq IN \
                (SELECT seq FROM revocations WHERE revoked_at < ? ORDER BY seq LIMIT ?)", before, limit).await?,
            Prunable::BackchannelDeliveries => delete_batch(&mut tx, "DELETE FROM backchannel_deliveries WHERE id IN \
                (SELECT id FROM backchannel_deliveries WHERE COALESCE(delivered_at, failed_at) < ? LIMIT ?)", before, limit).await?,
        };
        tx.commit().await.map_err(unavailable)?;
        Ok(deleted)
    }

    #[tracing::instrument(skip_all)]
    async fn prune_login_counters(
        &self,
        before: UnixTime,
        limit: u32,
    ) -> Result<(u64, Vec<ThrottleReport>), StoreError> {
        let mut tx = self.begin_immediate().await?;
        let rows = sqlx::query(
            "SELECT key, failures, last_failure_at, aggregated, aggregate_since, reported_at \
             FROM login_counters WHERE last_failure_at <= ? LIMIT ?",
        )
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        let mut forgotten = Vec::with_capacity(rows.len());
        for row in &rows {
            let key: String = row.try_get("key").map_err(corrupt)?;
            forgotten.push((key, counter_from_row(row)?));
        }
        let keys: Vec<&str> = forgotten.iter().map(|(key, _)| key.as_str()).collect();
        sqlx::query("DELETE FROM login_counters WHERE key IN (SELECT value FROM json_each(?))")
            .bind(json_list(&keys))
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
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
        _wake: std::sync::Arc<tokio::sync::Notify>,
    ) -> Result<bool, StoreError> {
        // One machine, no notification channel between processes: the IdP's own publications
        // wake its readers in-process, and readers re-read for what the CLI writes.
        Ok(false)
    }

    #[tracing::instrument(skip_all)]
    async fn check_ready(&self) -> Result<(), StoreError> {
        let applied = self.applied_migration().await.map_err(unavailable)?;
        schema_status(applied, MIGRATIONS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_database_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ostiary.db");
        SqliteStore::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        for file in [path.clone(), path.with_extension("db-wal")] {
            if file.exists() {
                let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", file.display());
            }
        }
        assert!(path.exists());
    }
}
