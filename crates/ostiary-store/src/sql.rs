//! The layer that lets a store method be written once for both backends: the method's body
//! (its transaction, its statements in order, its decisions, its rows read back) lives in
//! [`crate::methods`], generic over [`Backend`]; each backend supplies its dialect's SQL text
//! ([`Statements`]), how a value is bound ([`Arg`]), and how a transaction begins, locks,
//! appends to the revocation feed and commits ([`Transaction`]).
//!
//! What a backend does its own way stays in its own file: the refresh grant's read and
//! rotation (SQLite's writer thread, PostgreSQL's one statement), the feed's notifications,
//! the schema check, opening.

use async_trait::async_trait;
use ostiary_core::StoreError;
use ostiary_core::clock::UnixTime;

use crate::rows::Columns;

/// A value bound to a statement's parameter. Each backend converts it to its column type:
/// a flag is `BOOLEAN` on PostgreSQL and 0/1 on SQLite; a list is a `TEXT[]` on PostgreSQL
/// (`= ANY($n)`) and a JSON array on SQLite (`IN (SELECT value FROM json_each(?))`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    Flag(bool),
    Bytes(&'a [u8]),
    OptBytes(Option<&'a [u8]>),
    TextList(&'a [&'a str]),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(value: &'a str) -> Self {
        Arg::Text(value)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(value: &'a String) -> Self {
        Arg::Text(value)
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(value: Option<&'a str>) -> Self {
        Arg::OptText(value)
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(value: &'a Option<String>) -> Self {
        Arg::OptText(value.as_deref())
    }
}

impl From<i64> for Arg<'_> {
    fn from(value: i64) -> Self {
        Arg::Int(value)
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(value: Option<i64>) -> Self {
        Arg::OptInt(value)
    }
}

impl From<bool> for Arg<'_> {
    fn from(value: bool) -> Self {
        Arg::Flag(value)
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(value: &'a [u8]) -> Self {
        Arg::Bytes(value)
    }
}

impl<'a> From<&'a Option<Vec<u8>>> for Arg<'a> {
    fn from(value: &'a Option<Vec<u8>>) -> Self {
        Arg::OptBytes(value.as_deref())
    }
}

impl<'a> From<&'a [&'a str]> for Arg<'a> {
    fn from(value: &'a [&'a str]) -> Self {
        Arg::TextList(value)
    }
}

/// A statement's parameters, in order: `args![a, b]` is `&[Arg::from(a), Arg::from(b)]`.
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        &[$($crate::sql::Arg::from($value)),*]
    };
}
pub(crate) use args;

/// An entry a transaction appends to the revocation feed when it commits.
#[derive(Debug, Clone)]
pub(crate) struct FeedEntry {
    pub(crate) sid: Option<String>,
    pub(crate) jti: Option<String>,
    pub(crate) kid: Option<String>,
    pub(crate) revoked_at: UnixTime,
    pub(crate) reason: &'static str,
}

/// A database: statements on their own (each its own transaction) and transactions.
#[async_trait]
pub(crate) trait Backend: Send + Sync {
    /// A result row of this backend's driver.
    type Row: Columns + Send + Sync;
    /// A transaction of this backend.
    type Tx: Transaction<Row = Self::Row>;

    /// This backend's SQL text.
    fn sql(&self) -> &'static Statements;

    /// Begins a transaction. SQLite's takes the database's write lock at once (`BEGIN
    /// IMMEDIATE`), so it waits for the lock instead of failing midway; PostgreSQL's runs at
    /// READ COMMITTED and locks rows as its statements reach them.
    async fn begin(&self) -> Result<Self::Tx, StoreError>;

    /// Runs a statement; how many rows it changed.
    async fn execute(&self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64, StoreError>;

    /// Runs an `INSERT`; a unique-key violation is [`StoreError::Conflict`]`(what)`.
    async fn insert(
        &self,
        sql: &'static str,
        args: &[Arg<'_>],
        what: &'static str,
    ) -> Result<(), StoreError>;

    /// Runs a query; every row.
    async fn fetch_all(
        &self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Vec<Self::Row>, StoreError>;

    /// Runs a query; its first row, if any.
    async fn fetch_optional(
        &self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Option<Self::Row>, StoreError>;
}

/// A transaction. Dropped without [`commit`](Transaction::commit), it is rolled back.
#[async_trait]
pub(crate) trait Transaction: Send {
    /// A result row of this backend's driver.
    type Row: Columns + Send + Sync;

    /// Runs a statement in the transaction; how many rows it changed.
    async fn execute(&mut self, sql: &'static str, args: &[Arg<'_>]) -> Result<u64, StoreError>;

    /// Runs an `INSERT` in the transaction; a unique-key violation is
    /// [`StoreError::Conflict`]`(what)`.
    async fn insert(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
        what: &'static str,
    ) -> Result<(), StoreError>;

    /// Runs a query in the transaction; every row.
    async fn fetch_all(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Vec<Self::Row>, StoreError>;

    /// Runs a query in the transaction; its first row, if any.
    async fn fetch_optional(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Option<Self::Row>, StoreError>;

    /// Runs `lock` if this backend needs it (a statement of [`Statements`] that is `None`
    /// where the transaction already excludes every other writer, as SQLite's does).
    async fn lock(
        &mut self,
        lock: Option<&'static str>,
        args: &[Arg<'_>],
    ) -> Result<(), StoreError> {
        if let Some(lock) = lock {
            self.fetch_all(lock, args).await?;
        }
        Ok(())
    }

    /// Appends `entry` to the revocation feed as the transaction's last write, when it
    /// commits (on PostgreSQL under the feed's lock, so that seq order is commit order).
    fn publish(&mut self, entry: FeedEntry);

    /// Appends the feed entries (if any) and commits.
    async fn commit(self) -> Result<(), StoreError>;

    /// Undoes everything, feed entries included.
    async fn rollback(self) -> Result<(), StoreError>;
}

/// One backend's SQL text for every statement the shared methods run, named by what it does.
/// Parameters are in the order the method binds them (see [`crate::methods`]); a statement
/// that is `None` is one this backend does not need (a lock its transactions already hold).
pub(crate) struct Statements {
    // Users and clients.
    pub insert_user: &'static str,
    pub find_user: &'static str,
    pub find_user_by_username: &'static str,
    pub list_users: &'static str,
    pub update_user_disabled: &'static str,
    pub update_user_password: &'static str,
    pub insert_client: &'static str,
    pub find_client: &'static str,
    pub list_clients: &'static str,
    pub update_client_policy: &'static str,
    /// Run in the transaction that changed a client (binds its id): announces the change at
    /// commit to the processes that listen (`None`: no backend channel).
    pub notify_client_changed: Option<&'static str>,

    // Signing keys.
    pub list_signing_keys: &'static str,
    pub insert_signing_key: &'static str,
    pub lock_signing_keys: Option<&'static str>,
    pub pending_signing_key: &'static str,
    pub upsert_signing_key: &'static str,
    pub delete_signing_key: &'static str,

    // Sessions.
    pub lock_user: Option<&'static str>,
    pub live_sessions_of_user: &'static str,
    pub insert_session: &'static str,
    pub session_client_known: &'static str,
    pub live_sessions_of_user_with_client: &'static str,
    pub insert_session_client: &'static str,
    pub find_session: &'static str,
    pub find_session_by_cookie: &'static str,
    pub touch_session: &'static str,
    pub end_session: &'static str,
    pub end_families_of_session: &'static str,
    pub queue_backchannel_logouts: &'static str,
    pub sessions_of_user: &'static str,
    /// Everyone's active sessions (binds nothing).
    pub list_active_sessions: &'static str,
    /// One user's active sessions (binds the user id), found by the index on `user_id`: never
    /// a walk over everyone's sessions.
    pub list_active_sessions_of_user: &'static str,
    pub list_expired_sessions: &'static str,

    // Codes, refresh families, access tokens.
    pub insert_authorization_code: &'static str,
    pub consume_authorization_code: &'static str,
    pub find_authorization_code: &'static str,
    pub insert_refresh_family: &'static str,
    pub insert_refresh_token: &'static str,
    pub find_refresh_token: &'static str,
    pub find_refresh_family: &'static str,
    pub mark_successor_reissued: &'static str,
    pub end_refresh_family: &'static str,
    pub forget_session_client: &'static str,
    pub insert_revoked_access_token: &'static str,
    /// Records a DPoP proof (`jkt`, `jti_hash`, `expires_at`; `?4`/`$4` is now): one row
    /// changed if it is new or its earlier record had expired, none for a replay.
    pub use_dpop_proof: &'static str,
    /// Taken before a transaction appends to the revocation feed, held until it commits
    /// (`None`: its transactions already exclude every other writer).
    pub lock_feed: Option<&'static str>,
    /// Appends one feed entry: `sid`, `jti`, `kid`, `revoked_at`, `reason`.
    pub append_revocation: &'static str,
    /// Run after the feed entries, delivered at commit to the processes that listen.
    pub notify_feed: Option<&'static str>,
    pub is_access_token_revoked: &'static str,
    pub list_revocations: &'static str,

    // Back-channel logout.
    pub claim_backchannel_deliveries: &'static str,
    pub backchannel_delivered: &'static str,
    pub backchannel_retry: &'static str,
    pub backchannel_gave_up: &'static str,
    pub list_undelivered_backchannel: &'static str,

    // Audit.
    pub insert_audit_event: &'static str,
    /// Audit events, newest first, by the index of the filter that selects fewest: by user,
    /// by session, or by id for the rest (a walk from the newest event). Each binds the same
    /// six values: user id, sid, kind, since, until (each skipped when NULL), limit.
    pub list_audit_events_of_user: &'static str,
    pub list_audit_events_of_session: &'static str,
    pub list_audit_events: &'static str,

    // Login throttling.
    pub ensure_login_counter: &'static str,
    pub lock_login_counter: &'static str,
    pub update_login_counter: &'static str,
    pub lock_login_counters: Option<&'static str>,
    pub delete_login_counter: &'static str,
    pub decrement_login_counter: &'static str,
    pub clear_login_counters: &'static str,
    pub expired_login_counters: &'static str,
    pub delete_login_counters: &'static str,

    // Jobs and retention.
    pub claim_job: &'static str,
    pub ended_sessions: &'static str,
    /// Everything of a batch of ended sessions, deleted before the sessions themselves
    /// (foreign keys), then the sessions: each statement binds the batch's `sid` list.
    pub prune_sessions: [&'static str; 7],
    /// Of the oldest `limit` events by id, those before the cut-off: it reads no more than
    /// `limit` rows however large the log (there is no index by time), and a batch that
    /// deletes fewer than `limit` ends the pass.
    pub prune_audit_events: &'static str,
    pub prune_authorization_codes: &'static str,
    /// `issued_access_tokens` is no longer written (a replayed code ends its session instead
    /// of revoking its access tokens one by one); rows an earlier version wrote are pruned,
    /// and the table stays while instances of that version may share the database.
    pub prune_issued_access_tokens: &'static str,
    pub prune_revoked_access_tokens: &'static str,
    pub prune_dpop_proofs: &'static str,
    pub prune_revocations: &'static str,
    pub prune_backchannel_deliveries: &'static str,
}

/// A statement built at startup (from column lists written once, [`crate::rows`]), kept for
/// the life of the process like the constant ones.
pub(crate) fn built(sql: String) -> &'static str {
    sql.leak()
}

/// `Backend for $store` (whose `pool` field is an sqlx pool of `$database`) and the
/// transaction type `$tx` with its `Transaction`, written once over both sqlx drivers. What
/// differs is given: how `Arg`s are bound (`bind`) and how a transaction begins (`begin`, on
/// the pool); the SQL is the backend's `statements::SQL`. Feed entries are appended as a
/// transaction's last writes: `lock_feed`, each entry, `notify_feed`.
macro_rules! sqlx_backend {
    (
        store: $store:ty,
        tx: $tx:ident,
        database: $database:ty,
        row: $row:ty,
        bind: $bind:path,
        begin: |$pool:ident| $begin:expr $(,)?
    ) => {
        /// Runs a statement on a pool or in a transaction; how many rows it changed.
        async fn execute<'e>(
            executor: impl sqlx::Executor<'e, Database = $database>,
            sql: &'static str,
            args: &[$crate::sql::Arg<'_>],
        ) -> Result<u64, sqlx::Error> {
            let done = $bind(sqlx::query(sql), args).execute(executor).await?;
            Ok(done.rows_affected())
        }

        /// A unique-key violation as [`StoreError::Conflict`]`(what)`; anything else as
        /// unavailable.
        fn conflict(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
            move |e| {
                if $crate::shared::is_unique_violation(&e) {
                    StoreError::Conflict(what)
                } else {
                    $crate::shared::unavailable(e)
                }
            }
        }

        #[async_trait::async_trait]
        impl $crate::sql::Backend for $store {
            type Row = $row;
            type Tx = $tx;

            fn sql(&self) -> &'static $crate::sql::Statements {
                &statements::SQL
            }

            async fn begin(&self) -> Result<$tx, StoreError> {
                let $pool = &self.pool;
                Ok($tx {
                    tx: $begin.await.map_err($crate::shared::unavailable)?,
                    feed: Vec::new(),
                })
            }

            async fn execute(
                &self,
                sql: &'static str,
                args: &[$crate::sql::Arg<'_>],
            ) -> Result<u64, StoreError> {
                execute(&self.pool, sql, args)
                    .await
                    .map_err($crate::shared::unavailable)
            }

            async fn insert(
                &self,
                sql: &'static str,
                args: &[$crate::sql::Arg<'_>],
                what: &'static str,
            ) -> Result<(), StoreError> {
                execute(&self.pool, sql, args)
                    .await
                    .map(drop)
                    .map_err(conflict(what))
            }

            async fn fetch_all(
                &self,
                sql: &'static str,
                args: &[$crate::sql::Arg<'_>],
            ) -> Result<Vec<$row>, StoreError> {
                $bind(sqlx::query(sql), args)
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::shared::unavailable)
            }

            async fn fetch_optional(
                &self,
                sql: &'static str,
                args: &[$crate::sql::Arg<'_>],
            ) -> Result<Option<$row>, StoreError> {
                $bind(sqlx::query(sql), args)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($crate::shared::unavailable)
            }
        }

        /// A transaction and the feed entries it appends when it commits.
        pub(crate) struct $tx {
            tx: sqlx::Transaction<'static, $database>,
            feed: Vec<$crate::sql::FeedEntry>,
        }

        #[async_trait::async_trait]
        impl $crate::sql::Transaction for $tx {
            type Row = $row;

            async fn execute(
                &mut self,
                sql: &'static str,
                args: &[$crate::sql::Arg<'_>],
            ) -> Result<u64, StoreError> {
                execute(&mut *self.tx, sql, args)
                    .await
                    .map_err($crate::shared::unavailable)
            }

            async fn insert(
                &mut self,
                sql: &'static str,
                args: &[$crate::sql::Arg<'_>],
                what: &'static str,
            ) -> Result<(), StoreError> {
                execute(&mut *self.tx, sql, args)
                    .await
                    .map(drop)
                    .map_err(conflict(what))
            }

            async fn fetch_all(
                &mut self,
                sql: &'static str,
                args: &[$crate::sql::Arg<'_>],
            ) -> Result<Vec<$row>, StoreError> {
                $bind(sqlx::query(sql), args)
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err($crate::shared::unavailable)
            }

            async fn fetch_optional(
                &mut self,
                sql: &'static str,
                args: &[$crate::sql::Arg<'_>],
            ) -> Result<Option<$row>, StoreError> {
                $bind(sqlx::query(sql), args)
                    .fetch_optional(&mut *self.tx)
                    .await
                    .map_err($crate::shared::unavailable)
            }

            fn publish(&mut self, entry: $crate::sql::FeedEntry) {
                self.feed.push(entry);
            }

            async fn commit(mut self) -> Result<(), StoreError> {
                if !self.feed.is_empty() {
                    let sql = &statements::SQL;
                    if let Some(lock) = sql.lock_feed {
                        execute(&mut *self.tx, lock, &[])
                            .await
                            .map_err($crate::shared::unavailable)?;
                    }
                    for entry in &self.feed {
                        let args = $crate::sql::args![
                            &entry.sid,
                            &entry.jti,
                            &entry.kid,
                            entry.revoked_at,
                            entry.reason,
                        ];
                        execute(&mut *self.tx, sql.append_revocation, args)
                            .await
                            .map_err($crate::shared::unavailable)?;
                    }
                    if let Some(notify) = sql.notify_feed {
                        execute(&mut *self.tx, notify, &[])
                            .await
                            .map_err($crate::shared::unavailable)?;
                    }
                }
                self.tx.commit().await.map_err($crate::shared::unavailable)
            }

            async fn rollback(self) -> Result<(), StoreError> {
                self.tx
                    .rollback()
                    .await
                    .map_err($crate::shared::unavailable)
            }
        }
    };
}
pub(crate) use sqlx_backend;
