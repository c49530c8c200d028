//! The PostgreSQL implementation of [`Store`](ostiary_core::Store), for several IdP instances
//! sharing one database. Most methods are `methods`' bodies over this file's
//! `Backend`, with the SQL text in `statements.rs`; the refresh grant's statements (its read,
//! the rotation, a DPoP proof's record: one statement each, on connections of their own) and
//! the feed's notifications are this file's own.
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
//!   in any order, so `Tx::commit` takes a transaction-scoped advisory lock right before
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

use ostiary_core::store::{ChangeListener, RefreshGrant, Rotation, RotationOutcome, StoreError};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection as _, Postgres, Row};

use crate::OpenError;
use crate::methods;
use crate::sql::Arg;

mod hot;
mod statements;

use crate::rows::{REFRESH_GRANT_SELECT, refresh_grant_from_row};
use crate::shared::{
    corrupt, describe, invalid_url, log_opened, migration_failed, migrator, redacted_url,
    schema_status, unavailable,
};
use hot::HotConnections;

/// The embedded migrations, in order.
#[rustfmt::skip]
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/postgres/0001_init.sql")),
    (2, "login_failures_key_lifecycle", include_str!("../../migrations/postgres/0002_login_failures_key_lifecycle.sql")),
    (3, "hardening", include_str!("../../migrations/postgres/0003_hardening.sql")),
    (4, "partial_code_index", include_str!("../../migrations/postgres/0004_partial_code_index.sql")),
    (5, "dpop", include_str!("../../migrations/postgres/0005_dpop.sql")),
    (6, "audit_indexes", include_str!("../../migrations/postgres/0006_audit_indexes.sql")),
];

/// [`REFRESH_GRANT_SELECT`] for one token hash.
static REFRESH_GRANT_BY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{REFRESH_GRANT_SELECT} WHERE t.token_hash = $1"));

/// The channel notified, at commit, whenever a transaction appends to the revocation feed.
pub const REVOCATIONS_CHANNEL: &str = "ostiary_revocations";

/// The channel notified, at commit, whenever a client's registration changes; the payload is
/// the client's id.
pub const CLIENTS_CHANNEL: &str = "ostiary_clients";

/// Ostiary's storage on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// The refresh grant's read and rotation: one round trip each.
    hot: std::sync::Arc<HotConnections>,
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
            // Pinged when taken, so that a restart of the server is not seen by the requests
            // that meet its closed connections; the refresh grant, which cannot afford the
            // round trip, has connections of its own (`hot.rs`).
            .acquire_timeout(Duration::from_secs(10))
            .idle_timeout(Some(Duration::from_secs(600)))
            .max_lifetime(Some(Duration::from_secs(3600)))
            .connect_with(options.clone())
            .await
            .map_err(|e| cannot(describe(&e)))?;
        let store = Self {
            pool,
            hot: std::sync::Arc::new(HotConnections::new(options)),
        };
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
}

/// Binds `args` to a statement, as PostgreSQL types them: flags as `BOOLEAN`, lists as
/// `TEXT[]`, integers as `BIGINT`.
fn bind<'q>(
    mut query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    args: &[Arg<'_>],
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    for arg in args {
        query = match *arg {
            Arg::Text(value) => query.bind(value),
            Arg::OptText(value) => query.bind(value),
            Arg::Int(value) => query.bind(value),
            Arg::OptInt(value) => query.bind(value),
            Arg::Flag(value) => query.bind(value),
            Arg::Bytes(value) => query.bind(value),
            Arg::OptBytes(value) => query.bind(value),
            Arg::TextList(values) => query.bind(values),
        };
    }
    query
}

crate::sql::sqlx_backend! {
    store: PostgresStore,
    tx: Tx,
    database: Postgres,
    row: PgRow,
    bind: bind,
    begin: |pool| pool.begin(),
}

// Text is ordered with `COLLATE "C"` (bytewise), as SQLite orders it, whatever the database's
// locale; usernames by `lower()`, as SQLite's NOCASE orders them.
methods::impl_store! {
    PostgresStore;

    // The refresh grant's two calls: spans at debug, free at the default level.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn find_refresh_grant(
        &self,
        token_hash: &CredentialHash,
    ) -> Result<Option<RefreshGrant>, StoreError> {
        // A read: run again once on a new connection if an idle one turned out to be closed
        // (a restart of the server since it was last used).
        for attempt in 0..2 {
            let mut taken = self.hot.take(attempt > 0).await?;
            let outcome = sqlx::query(REFRESH_GRANT_BY_HASH.as_str())
                .bind(token_hash.as_str())
                .fetch_optional(&mut taken.connection)
                .await;
            let retry = attempt == 0 && matches!(outcome, Err(sqlx::Error::Io(_)));
            let row = match self.hot.give_back(taken, outcome) {
                Err(_) if retry => continue,
                row => row?,
            };
            return row.as_ref().map(refresh_grant_from_row).transpose();
        }
        unreachable!("the loop returns on its second attempt")
    }

    #[tracing::instrument(level = "debug", skip_all, fields(family = %rotation.family_id, generation = rotation.expected_generation))]
    async fn rotate_refresh(&self, rotation: &Rotation) -> Result<RotationOutcome, StoreError> {
        // One statement, so one round trip and its own transaction (nothing is left half-done
        // on a connection if the caller goes away). The session is touched (and locked)
        // before the family row: the family's update joins the touched session, so it cannot
        // lock the family first; an ending locks them in the same order, so a rotation racing
        // a logout waits for it instead of deadlocking. Under READ COMMITTED a concurrent
        // rotation makes the family's `generation = $6` false when it is re-checked, and
        // nothing is inserted: this call lost. The session is touched only while the swap can
        // still win (a concurrent winner touches it too). (Locking it and touching it only
        // when the second moved on, as SQLite does, measured no faster.)
        //
        // A DPoP proof ($17–$19, all NULL without one) is recorded by the first sub-statement,
        // and the session is touched only if that recorded it: a replay (the conflicting row
        // still live) changes nothing. Sub-statements see one snapshot, so a rotation that
        // loses still records its proof (the answer says so).
        let proof = rotation.dpop_proof.as_ref();
        let mut taken = self.hot.take(false).await?;
        let swapped: Result<(i64, i64), sqlx::Error> = sqlx::query_as(
            "WITH proof AS ( \
                INSERT INTO dpop_proofs (jkt, jti_hash, expires_at) SELECT $17, $18, $19 WHERE $17::TEXT IS NOT NULL \
                ON CONFLICT (jkt, jti_hash) DO UPDATE SET expires_at = EXCLUDED.expires_at \
                WHERE dpop_proofs.expires_at < $1 \
                RETURNING 1), \
             touched AS ( \
                UPDATE sessions SET last_used_at = GREATEST(last_used_at, $1) \
                WHERE sid = (SELECT sid FROM refresh_families WHERE id = $5 AND generation = $6 AND ended_at IS NULL) \
                AND ($17::TEXT IS NULL OR EXISTS (SELECT 1 FROM proof)) \
                RETURNING sid), \
             swapped AS ( \
                UPDATE refresh_families f SET generation = f.generation + 1, rotated_at = $1, sealed_successor = $2, \
                last_use_ip = $3, last_use_user_agent = $4, previous_reissued = f.current_reissued, current_reissued = FALSE \
                FROM touched WHERE f.sid = touched.sid AND f.id = $5 AND f.generation = $6 AND f.ended_at IS NULL \
                RETURNING f.id), \
             token AS ( \
                INSERT INTO refresh_tokens (token_hash, family_id, generation) SELECT $7, id, $6 + 1 FROM swapped), \
             audited AS ( \
                INSERT INTO audit_events (at, kind, actor, user_id, sid, client_id, ip, user_agent, details) \
                SELECT $8, $9, $10, $11, $12, $13, $14, $15, $16 FROM swapped) \
             SELECT (SELECT COUNT(*) FROM swapped), (SELECT COUNT(*) FROM proof)",
        )
        .bind(rotation.now)
        .bind(&rotation.sealed_successor)
        .bind(&rotation.ip)
        .bind(&rotation.user_agent)
        .bind(&rotation.family_id)
        .bind(rotation.expected_generation)
        .bind(rotation.new_token_hash.as_str())
        .bind(rotation.audit.at)
        .bind(rotation.audit.kind.as_str())
        .bind(&rotation.audit.actor)
        .bind(&rotation.audit.user_id)
        .bind(&rotation.audit.sid)
        .bind(&rotation.audit.client_id)
        .bind(&rotation.audit.ip)
        .bind(&rotation.audit.user_agent)
        .bind(rotation.audit.details.to_string())
        .bind(proof.map(|p| p.jkt.as_str()))
        .bind(proof.map(|p| p.jti_hash.as_str()))
        .bind(proof.map(|p| p.expires_at))
        .fetch_one(&mut taken.connection)
        .await;
        let (swapped, recorded) = self.hot.give_back(taken, swapped)?;
        Ok(match (swapped, recorded) {
            (1, _) => RotationOutcome::Rotated,
            (_, 0) if proof.is_some() => RotationOutcome::ProofReplayed,
            (_, recorded) => RotationOutcome::Lost {
                proof_recorded: recorded == 1,
            },
        })
    }

    // On the refresh path's own connections: one statement, its own transaction.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn use_dpop_proof(
        &self,
        jkt: &str,
        jti_hash: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut taken = self.hot.take(false).await?;
        let recorded = sqlx::query(statements::SQL.use_dpop_proof)
            .bind(jkt)
            .bind(jti_hash)
            .bind(expires_at)
            .bind(now)
            .execute(&mut taken.connection)
            .await
            .map(|done| done.rows_affected() == 1);
        self.hot.give_back(taken, recorded)
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

    async fn listen(
        &self,
        listener: std::sync::Arc<dyn ChangeListener>,
    ) -> Result<bool, StoreError> {
        let mut notifications = sqlx::postgres::PgListener::connect_with(&self.pool)
            .await
            .map_err(unavailable)?;
        notifications
            .listen_all([REVOCATIONS_CHANNEL, CLIENTS_CHANNEL])
            .await
            .map_err(unavailable)?;
        let pool = self.pool.clone();
        tokio::spawn(async move {
            // `try_recv` reconnects by itself after a lost connection; what was sent meanwhile
            // is lost, so the listener is told to re-read.
            loop {
                if pool.is_closed() {
                    return;
                }
                match notifications.try_recv().await {
                    Ok(Some(notification)) if notification.channel() == CLIENTS_CHANNEL => {
                        listener.client_changed(notification.payload());
                    }
                    Ok(Some(_)) => listener.revocations_published(),
                    Ok(None) => {
                        tracing::warn!("change notifications: connection lost; reconnecting");
                        listener.notifications_lost();
                    }
                    Err(error) => {
                        tracing::warn!(%error, "change notifications failed; retrying");
                        listener.notifications_lost();
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
