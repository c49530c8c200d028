//! What the SQLite and PostgreSQL stores share: error mapping (and the operator-facing text of
//! driver errors), how lists and policies are kept in text columns, the embedded-migration
//! runner, the schema check, the log line naming the database opened, and the session-limit
//! decision. Only the SQL around them differs per backend.

use ostiary_core::StoreError;
use ostiary_core::clock::UnixTime;
use ostiary_core::session::ClientPolicy;
use ostiary_core::store::{LoginAttempt, LoginCounters, SessionLimit, ThrottleKey, ThrottleReport};
use ostiary_core::throttle::{REPORT_INTERVAL, ThrottlePolicy, evaluate};
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};

use crate::OpenError;

/// A driver error: the database could not do it. The text is [`describe`]d (it may reach an
/// operator through the CLI); the driver's full error goes to the debug log.
pub(crate) fn unavailable(e: sqlx::Error) -> StoreError {
    tracing::debug!(error = ?e, "database error");
    if is_data_exception(&e) {
        // The input, not the database: never reported as an outage. The guard
        // (`crate::guard`) should have stopped it; this catches what it does not know.
        tracing::warn!(error = %describe(&e), "the database refused a value as invalid");
        return StoreError::InvalidInput("value");
    }
    StoreError::Unavailable(describe(&e))
}

/// Whether PostgreSQL refused a value itself (SQLSTATE class 22, data exception: a NUL in
/// text, a number out of range, …), as opposed to being unreachable or failing.
fn is_data_exception(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some()
            && db.code().is_some_and(|code| code.starts_with("22")))
}

/// What went wrong, for an operator: the database's own message without the driver's
/// decoration (sqlx's "error returned from database:", PostgreSQL's "at line 948" of its
/// source, SQLite's "(code: 14)"), an I/O error without its errno.
pub(crate) fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Io(io) => describe_io(io),
        sqlx::Error::Tls(tls) => format!("TLS: {tls}"),
        sqlx::Error::Configuration(config) => config.to_string(),
        sqlx::Error::PoolTimedOut => "no database connection became available in time".into(),
        sqlx::Error::PoolClosed => "the database connection pool is closed".into(),
        other => other.to_string(),
    }
}

/// An I/O error as "Connection refused", without " (os error 111)".
fn describe_io(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_owned(),
        _ => text,
    }
}

/// A failed migration, for an operator (the driver's error goes to the debug log).
pub(crate) fn migration_failed(e: MigrateError) -> OpenError {
    tracing::debug!(error = ?e, "migration failed");
    let why = match &e {
        MigrateError::Execute(inner) => describe(inner),
        MigrateError::ExecuteMigration(inner, version) => {
            format!("migration {version}: {}", describe(inner))
        }
        MigrateError::VersionMissing(version) => format!(
            "the database has migration {version}, which this build does not know (was it \
             migrated by a newer ostiary?)"
        ),
        MigrateError::VersionMismatch(version) => {
            format!("migration {version} in the database differs from this build's")
        }
        other => other.to_string(),
    };
    OpenError::Database(format!("migration failed: {why}"))
}

/// A URL the driver refused, for an operator. The URL itself is not repeated: it may hold a
/// password.
pub(crate) fn invalid_url(kind: &str, example: &str, e: &sqlx::Error) -> OpenError {
    OpenError::InvalidUrl(format!("{kind} URL: {} (expected {example})", describe(e)))
}

/// Logs, at info level, which database a store uses and whether it was empty (no Ostiary
/// schema), so that a mistyped path or database name shows as a new, empty database rather
/// than as the one the operator meant. `database` must carry no password.
pub(crate) fn log_opened(database: &str, empty: bool, migrated: bool) {
    match (empty, migrated) {
        (true, true) => tracing::info!(
            database,
            created = true,
            "new, empty database (schema created)"
        ),
        (true, false) => tracing::info!(database, created = false, "empty database (no schema)"),
        (false, _) => tracing::info!(database, created = false, "database opened"),
    }
}

/// A database URL as it may be logged: without the password of its user part or of a
/// `password` query parameter. What does not parse as a URL is reduced to its scheme.
pub(crate) fn redacted_url(database_url: &str) -> String {
    let Ok(mut url) = url::Url::parse(database_url) else {
        let scheme = database_url.split(':').next().unwrap_or_default();
        return format!("{scheme}://…");
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("redacted"));
    }
    let secret = |key: &str| key.to_ascii_lowercase().contains("password");
    if url.query_pairs().any(|(key, _)| secret(&key)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let value = if secret(&key) {
                    "redacted".into()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// A stored value that does not read back.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// Whether the error is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A list as its JSON text column.
pub(crate) fn json_list<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// A JSON text column as a list of strings.
pub(crate) fn parse_list(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(corrupt)
}

/// A client's policy as its JSON text column.
pub(crate) fn policy_json(policy: &ClientPolicy) -> Result<String, StoreError> {
    serde_json::to_string(policy).map_err(corrupt)
}

/// The migrator of embedded migrations `(version, description, sql)`.
pub(crate) fn migrator(migrations: &[(i64, &str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    (*description).to_owned().into(),
                    MigrationType::Simple,
                    AssertSqlSafe(*sql).into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// `Ok` when the `applied` migration is the last of `migrations`; otherwise an error saying
/// what to do.
pub(crate) fn schema_status(
    applied: Option<i64>,
    migrations: &[(i64, &str, &'static str)],
) -> Result<(), StoreError> {
    let expected = migrations.last().map(|(version, _, _)| *version);
    if applied == expected {
        return Ok(());
    }
    let applied = applied.map_or("none".to_owned(), |v| v.to_string());
    let expected = expected.unwrap_or_default();
    Err(StoreError::Unavailable(format!(
        "database schema is at migration {applied}, this build needs {expected}: run `ostiary migrate`"
    )))
}

/// What a session limit says about admitting one more session, given the `active` sessions
/// that count (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitDecision {
    /// Room enough (or no limit).
    Admit,
    /// At the limit, and the policy refuses.
    Refuse,
    /// At the limit: end the active sessions from this index on (the oldest), then admit.
    EvictFrom(usize),
}

/// See [`LimitDecision`].
pub(crate) fn limit_decision(limit: &SessionLimit, active: usize) -> LimitDecision {
    let max = usize::try_from(limit.max).unwrap_or(usize::MAX);
    if max == 0 || active < max {
        LimitDecision::Admit
    } else if limit.evict_oldest {
        LimitDecision::EvictFrom(max - 1)
    } else {
        LimitDecision::Refuse
    }
}

/// A failed-login counter's row (`login_counters`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CounterRow {
    /// Failures counted.
    pub failures: i64,
    /// When the last was counted.
    pub last_failure_at: UnixTime,
    /// Attempts in the aggregate since the last report.
    pub aggregated: i64,
    /// When the first of them came.
    pub aggregate_since: UnixTime,
    /// When the aggregate was last reported (0: never).
    pub reported_at: UnixTime,
}

/// What one login attempt does to its counters: the answer, and the rows to write (index into
/// the keys, new value).
#[derive(Debug)]
pub(crate) struct AttemptPlan {
    pub attempt: LoginAttempt,
    pub writes: Vec<(usize, CounterRow)>,
}

/// Decides a login attempt on the counters read in its transaction (`rows[i]` for `keys[i]`),
/// the same way on every backend: [`evaluate`], then the failure counts and the aggregate.
pub(crate) fn plan_login_attempt(
    keys: &[ThrottleKey],
    rows: &[Option<CounterRow>],
    now: UnixTime,
    policy: &ThrottlePolicy,
) -> AttemptPlan {
    let live = |row: &CounterRow| now < row.last_failure_at.saturating_add(policy.window);
    let counters: Vec<Option<LoginCounters>> = rows
        .iter()
        .map(|row| {
            row.filter(live).map(|row| LoginCounters {
                failures: u32::try_from(row.failures).unwrap_or(u32::MAX),
                last_failure_at: row.last_failure_at,
            })
        })
        .collect();
    let evaluation = evaluate(policy, keys, &counters, now);
    let mut reports = Vec::new();
    let mut writes = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        let stored = rows[index];
        let mut row = match stored {
            Some(row) if live(&row) => row,
            // Forgotten: what its aggregate still held is reported now, before it goes.
            Some(row) => {
                if row.aggregated > 0 {
                    reports.push(report(key, &row));
                }
                CounterRow::default()
            }
            None => CounterRow::default(),
        };
        let counted = evaluation.refused_for.is_none();
        let aggregated = evaluation.aggregate_into == Some(index);
        if !counted && !aggregated && stored.is_none_or(|s| s == row) {
            continue;
        }
        if counted {
            row.failures += 1;
            row.last_failure_at = now;
        }
        if aggregated {
            if row.aggregated == 0 {
                row.aggregate_since = now;
            }
            row.aggregated += 1;
            if now >= row.reported_at.saturating_add(REPORT_INTERVAL) {
                reports.push(report(key, &row));
                row.aggregated = 0;
                row.reported_at = now;
            }
        }
        writes.push((index, row));
    }
    AttemptPlan {
        attempt: LoginAttempt {
            evaluation,
            reports,
        },
        writes,
    }
}

/// Every table of the schema (for [`ostiary_core::Store::row_counts`]).
pub(crate) const TABLES: &[&str] = &[
    "users",
    "clients",
    "signing_keys",
    "sessions",
    "session_clients",
    "authorization_codes",
    "refresh_families",
    "refresh_tokens",
    "issued_access_tokens",
    "revoked_access_tokens",
    "dpop_proofs",
    "revocations",
    "backchannel_deliveries",
    "audit_events",
    "login_counters",
    "job_leases",
];

/// The reports of aggregates that forgotten counters still held (key, row).
pub(crate) fn leftover_reports(forgotten: &[(String, CounterRow)]) -> Vec<ThrottleReport> {
    forgotten
        .iter()
        .filter(|(_, row)| row.aggregated > 0)
        .map(|(key, row)| ThrottleReport {
            key: key.clone(),
            kind: ostiary_core::throttle::CounterKind::of_key(key),
            attempts: u64::try_from(row.aggregated).unwrap_or_default(),
            since: row.aggregate_since,
        })
        .collect()
}

fn report(key: &ThrottleKey, row: &CounterRow) -> ThrottleReport {
    ThrottleReport {
        key: key.key.clone(),
        kind: key.kind,
        attempts: u64::try_from(row.aggregated).unwrap_or_default(),
        since: row.aggregate_since,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(max: u32, evict_oldest: bool) -> SessionLimit {
        SessionLimit {
            max,
            evict_oldest,
            idle_since: 0,
            absolute_since: 0,
        }
    }

    #[test]
    fn a_limit_admits_below_it_and_refuses_or_evicts_the_oldest_at_it() {
        assert_eq!(limit_decision(&limit(0, false), 99), LimitDecision::Admit);
        assert_eq!(limit_decision(&limit(2, false), 1), LimitDecision::Admit);
        assert_eq!(limit_decision(&limit(2, false), 2), LimitDecision::Refuse);
        assert_eq!(
            limit_decision(&limit(2, true), 3),
            LimitDecision::EvictFrom(1)
        );
        assert_eq!(
            limit_decision(&limit(1, true), 1),
            LimitDecision::EvictFrom(0)
        );
    }

    #[test]
    fn a_logged_database_url_carries_no_password() {
        assert_eq!(
            redacted_url("postgres://ostiary:s3cret@db.internal:5432/idp"),
            "postgres://ostiary:redacted@db.internal:5432/idp"
        );
        assert_eq!(
            redacted_url("postgres://ostiary@db/idp?sslmode=require&password=s3cret"),
            "postgres://ostiary@db/idp?sslmode=require&password=redacted"
        );
        assert_eq!(
            redacted_url("postgres://ostiary@db/idp"),
            "postgres://ostiary@db/idp"
        );
        assert_eq!(redacted_url("postgres://u:s3cret@[bad"), "postgres://…");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn driver_errors_are_described_without_their_decoration() {
        let refused = sqlx::Error::Io(std::io::Error::from_raw_os_error(111)); // ECONNREFUSED
        let text = describe(&refused);
        assert!(!text.contains("os error"), "{text}");
        assert!(text.to_ascii_lowercase().contains("refused"), "{text}");
        assert_eq!(
            describe(&sqlx::Error::PoolTimedOut),
            "no database connection became available in time"
        );
    }

    #[test]
    fn the_schema_is_ready_only_at_the_last_migration() {
        let migrations = [(1, "a", ""), (2, "b", "")];
        assert!(schema_status(Some(2), &migrations).is_ok());
        let behind = schema_status(Some(1), &migrations).unwrap_err().to_string();
        assert!(
            behind.contains("at migration 1, this build needs 2"),
            "{behind}"
        );
        let empty = schema_status(None, &migrations).unwrap_err().to_string();
        assert!(empty.contains("at migration none"), "{empty}");
    }
}
