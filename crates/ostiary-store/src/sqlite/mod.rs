//! The SQLite implementation of [`Store`](ostiary_core::Store).
//!
//! Most methods are `methods`' bodies over this file's `Backend`: statements on
//! sqlx's pool, their SQL text in `statements.rs`. Writes that must be atomic run in
//! `BEGIN IMMEDIATE` transactions, so that the write lock is taken up front and waits (busy
//! timeout 5 s) instead of failing midway; feed entries are appended at commit, under that
//! lock, so seq order is commit order.
//!
//! The refresh grant is this file's own: its read runs on a read-only `rusqlite` connection
//! on the calling thread, its rotation on the writer thread (`writer.rs`: one connection,
//! group commit), and so is the record of a DPoP proof's `jti` that comes with it (on sqlx's
//! pool it would pay a commit of its own and wait for the writer's lock). The rotation is a
//! compare-and-swap: `UPDATE … WHERE generation = expected`, and only the caller that changed
//! a row won.

use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ostiary_core::store::{ChangeListener, RefreshGrant, Rotation, RotationOutcome, StoreError};
use sqlx::sqlite::SqliteRow;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::OpenError;
use crate::methods;
use crate::rows::{NamedRow, REFRESH_GRANT_SELECT, refresh_grant_from_row};
use crate::shared::{
    corrupt, describe, invalid_url, json_list, log_opened, migration_failed, migrator,
    schema_status, unavailable,
};
use crate::sql::Arg;

mod statements;
mod writer;

use writer::{Readers, Writer};

/// The embedded migrations, in order.
#[rustfmt::skip]
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, "revocations", include_str!("../../migrations/sqlite/0002_revocations.sql")),
    (3, "audit", include_str!("../../migrations/sqlite/0003_audit.sql")),
    (4, "backchannel", include_str!("../../migrations/sqlite/0004_backchannel.sql")),
    (5, "refresh_use_origin", include_str!("../../migrations/sqlite/0005_refresh_use_origin.sql")),
    (6, "client_policy", include_str!("../../migrations/sqlite/0006_client_policy.sql")),
    (7, "login_failures", include_str!("../../migrations/sqlite/0007_login_failures.sql")),
    (8, "key_lifecycle", include_str!("../../migrations/sqlite/0008_key_lifecycle.sql")),
    (9, "hardening", include_str!("../../migrations/sqlite/0009_hardening.sql")),
    (10, "partial_code_index", include_str!("../../migrations/sqlite/0010_partial_code_index.sql")),
    (11, "dpop", include_str!("../../migrations/sqlite/0011_dpop.sql")),
    (12, "audit_indexes", include_str!("../../migrations/sqlite/0012_audit_indexes.sql")),
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

/// Binds `args` to a statement, as SQLite keeps them: flags as 0/1, lists as JSON arrays.
fn bind<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    args: &[Arg<'_>],
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    for arg in args {
        query = match *arg {
            Arg::Text(value) => query.bind(value.to_owned()),
            Arg::OptText(value) => query.bind(value.map(str::to_owned)),
            Arg::Int(value) => query.bind(value),
            Arg::OptInt(value) => query.bind(value),
            Arg::Flag(value) => query.bind(i64::from(value)),
            Arg::Bytes(value) => query.bind(value.to_vec()),
            Arg::OptBytes(value) => query.bind(value.map(<[u8]>::to_vec)),
            Arg::TextList(values) => query.bind(json_list(values)),
        };
    }
    query
}

crate::sql::sqlx_backend! {
    store: SqliteStore,
    tx: Tx,
    database: sqlx::Sqlite,
    row: SqliteRow,
    bind: bind,
    begin: |pool| pool.begin_with("BEGIN IMMEDIATE"),
}

/// [`REFRESH_GRANT_SELECT`] for one token hash.
static REFRESH_GRANT_BY_HASH: LazyLock<String> =
    LazyLock::new(|| format!("{REFRESH_GRANT_SELECT} WHERE t.token_hash = ?1"));

/// The rotation's compare-and-swap and everything that goes with it (the new token's hash,
/// the session touched, the access token recorded, the audit event), on the writer's
/// connection inside its batch. `false` if the family was not at the expected generation (or
/// had ended): then nothing was changed.
fn rotate_in(
    connection: &rusqlite::Connection,
    rotation: &Rotation,
) -> Result<RotationOutcome, StoreError> {
    use rusqlite::{OptionalExtension, params};
    let fail = writer::unavailable;
    // The proof first: a replay changes nothing. A rotation that then does not apply is
    // rolled back with its proof (the writer's savepoint), so the proof stays unused.
    if let Some(proof) = &rotation.dpop_proof {
        let recorded = connection
            .prepare_cached(statements::SQL.use_dpop_proof)
            .map_err(fail)?
            .execute(params![
                proof.jkt,
                proof.jti_hash,
                proof.expires_at,
                rotation.now
            ])
            .map_err(fail)?;
        if recorded != 1 {
            return Ok(RotationOutcome::ProofReplayed);
        }
    }
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
        return Ok(RotationOutcome::Lost {
            proof_recorded: false,
        });
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
    Ok(RotationOutcome::Rotated)
}

methods::impl_store! {
    SqliteStore;

    // The refresh grant's two calls: spans at debug, free at the default level.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn find_refresh_grant(
        &self,
        token_hash: &CredentialHash,
    ) -> Result<Option<RefreshGrant>, StoreError> {
        let hash = token_hash.as_str();
        self.readers.read(|connection| {
            let mut statement = connection
                .prepare_cached(&REFRESH_GRANT_BY_HASH)
                .map_err(writer::unavailable)?;
            // The statement's text is fixed, and so are its column names.
            static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
            let names = NAMES.get_or_init(|| {
                statement.column_names().into_iter().map(str::to_owned).collect()
            });
            let mut rows = statement
                .query([hash])
                .map_err(writer::unavailable)?;
            rows.next()
                .map_err(writer::unavailable)?
                .map(|row| refresh_grant_from_row(&NamedRow { row, names }))
                .transpose()
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(family = %rotation.family_id, generation = rotation.expected_generation))]
    async fn rotate_refresh(&self, rotation: &Rotation) -> Result<RotationOutcome, StoreError> {
        // On the writer thread, in a batch with the rotations that arrive meanwhile; kept only
        // if it applied (its savepoint rolled back otherwise, its proof's record with it).
        let rotation = rotation.clone();
        self.writer
            .write(
                move |connection| rotate_in(connection, &rotation),
                |outcome| *outcome == RotationOutcome::Rotated,
            )
            .await
    }

    // On the writer thread too (a write on another connection would pay a commit of its own
    // and wait for the writer's lock). A refresh records its proof with its rotation instead.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn use_dpop_proof(
        &self,
        jkt: &str,
        jti_hash: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let (jkt, jti_hash) = (jkt.to_owned(), jti_hash.to_owned());
        self.writer
            .write(
                move |connection| {
                    connection
                        .prepare_cached(statements::SQL.use_dpop_proof)
                        .map_err(writer::unavailable)?
                        .execute(rusqlite::params![jkt, jti_hash, expires_at, now])
                        .map(|recorded| recorded == 1)
                        .map_err(writer::unavailable)
                },
                |recorded| *recorded,
            )
            .await
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

    async fn listen(
        &self,
        _listener: std::sync::Arc<dyn ChangeListener>,
    ) -> Result<bool, StoreError> {
        // One machine, no notification channel between processes: the IdP's own changes apply
        // in-process, readers re-read and caches expire for what the CLI writes.
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

    /// A new database file made by the store (its schema migrated), in a directory that lasts
    /// as long as the returned guard.
    async fn new_database() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ostiary.db");
        SqliteStore::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        (dir, path)
    }

    /// How SQLite would run `statement`: the detail column of its query plan, one line per
    /// step.
    fn plan(connection: &rusqlite::Connection, statement: &str) -> Vec<String> {
        let mut explain = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {statement}"))
            .unwrap();
        // Unbound parameters are NULL, which is all a plan needs.
        let mut rows = explain.raw_query();
        let mut steps = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            steps.push(row.get::<_, String>(3).unwrap());
        }
        steps
    }

    /// The reads a person's page or an administrator's filter makes, whatever else the
    /// database holds: each finds its rows by an index on what it selects by, and none walks
    /// every session or every audit event (which a condition skipped when NULL, `?1 IS NULL
    /// OR user_id = ?1`, would make it do: SQLite cannot use an index for it).
    #[tokio::test]
    async fn what_one_user_or_session_reads_is_found_by_index_not_by_a_walk() {
        let (_dir, path) = new_database().await;
        let connection = rusqlite::Connection::open(&path).unwrap();
        let sql = &statements::SQL;
        for (statement, index) in [
            (
                sql.list_active_sessions_of_user,
                "SEARCH s USING INDEX sessions_user",
            ),
            (
                sql.list_audit_events_of_user,
                "SEARCH audit_events USING INDEX audit_events_user",
            ),
            (
                sql.list_audit_events_of_session,
                "SEARCH audit_events USING INDEX audit_events_sid",
            ),
            (
                sql.sessions_of_user,
                "SEARCH sessions USING INDEX sessions_user",
            ),
        ] {
            let plan = plan(&connection, statement);
            assert!(
                plan.iter().any(|step| step.starts_with(index)),
                "{statement}: {plan:?}"
            );
            assert!(
                !plan.iter().any(|step| step.starts_with("SCAN s")
                    || step.starts_with("SCAN sessions")
                    || step.starts_with("SCAN audit_events")),
                "{statement}: {plan:?}"
            );
        }
        // A user's newest events come in id order from the index: no sort of all of them.
        let plan = plan(&connection, sql.list_audit_events_of_user);
        assert_eq!(
            plan.iter()
                .filter(|step| step.contains("TEMP B-TREE"))
                .count(),
            1,
            "only the page itself is sorted back to oldest first: {plan:?}"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_database_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt as _;
        let (_dir, path) = new_database().await;
        for file in [path.clone(), path.with_extension("db-wal")] {
            if file.exists() {
                let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", file.display());
            }
        }
        assert!(path.exists());
    }
}
