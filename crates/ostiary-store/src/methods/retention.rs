//! Retention: the job lease, pruning what has expired, and the row counts that show growth.

use std::sync::LazyLock;

use ostiary_core::StoreError;
use ostiary_core::clock::UnixTime;
use ostiary_core::retention::Prunable;
use ostiary_core::store::ThrottleReport;

use crate::rows::{Columns, counter_from_row};
use crate::shared::{TABLES, leftover_reports};
use crate::sql::{Backend, Transaction, args, built};

pub(crate) async fn claim_job(
    db: &impl Backend,
    name: &str,
    holder: &str,
    now: UnixTime,
    lease: i64,
) -> Result<bool, StoreError> {
    let claimed = db
        .execute(
            db.sql().claim_job,
            args![name, holder, now.saturating_add(lease), now],
        )
        .await?;
    Ok(claimed == 1)
}

pub(crate) async fn prune(
    db: &impl Backend,
    what: Prunable,
    before: UnixTime,
    limit: u32,
) -> Result<u64, StoreError> {
    let sql = db.sql();
    let limit = i64::from(limit);
    let mut tx = db.begin().await?;
    let deleted = match what {
        Prunable::EndedSessions => {
            let rows = tx
                .fetch_all(sql.ended_sessions, args![before, limit])
                .await?;
            let sids = rows
                .iter()
                .map(|row| row.text("sid"))
                .collect::<Result<Vec<_>, _>>()?;
            let sids: Vec<&str> = sids.iter().map(String::as_str).collect();
            for statement in sql.prune_sessions {
                tx.execute(statement, args![sids.as_slice()]).await?;
            }
            sids.len() as u64
        }
        Prunable::AuditEvents => {
            tx.execute(sql.prune_audit_events, args![before, limit])
                .await?
        }
        Prunable::AuthorizationCodes => {
            tx.execute(sql.prune_authorization_codes, args![before, limit])
                .await?
        }
        Prunable::AccessTokens => {
            tx.execute(sql.prune_issued_access_tokens, args![before, limit])
                .await?
                + tx.execute(sql.prune_revoked_access_tokens, args![before, limit])
                    .await?
                + tx.execute(sql.prune_dpop_proofs, args![before, limit])
                    .await?
        }
        Prunable::Revocations => {
            tx.execute(sql.prune_revocations, args![before, limit])
                .await?
        }
        Prunable::BackchannelDeliveries => {
            tx.execute(sql.prune_backchannel_deliveries, args![before, limit])
                .await?
        }
    };
    tx.commit().await?;
    Ok(deleted)
}

pub(crate) async fn prune_login_counters(
    db: &impl Backend,
    before: UnixTime,
    limit: u32,
) -> Result<(u64, Vec<ThrottleReport>), StoreError> {
    let sql = db.sql();
    let mut tx = db.begin().await?;
    let rows = tx
        .fetch_all(sql.expired_login_counters, args![before, i64::from(limit)])
        .await?;
    let mut forgotten = Vec::with_capacity(rows.len());
    for row in &rows {
        forgotten.push((row.text("key")?, counter_from_row(row)?));
    }
    let keys: Vec<&str> = forgotten.iter().map(|(key, _)| key.as_str()).collect();
    tx.execute(sql.delete_login_counters, args![keys.as_slice()])
        .await?;
    tx.commit().await?;
    Ok((forgotten.len() as u64, leftover_reports(&forgotten)))
}

/// `SELECT COUNT(*)` of each table of [`TABLES`], in its order (the same SQL on both
/// backends).
static COUNT_ROWS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    TABLES
        .iter()
        .map(|table| built(format!("SELECT COUNT(*) AS n FROM {table}")))
        .collect()
});

pub(crate) async fn row_counts(db: &impl Backend) -> Result<Vec<(String, u64)>, StoreError> {
    let mut counts = Vec::with_capacity(TABLES.len());
    for (table, statement) in TABLES.iter().zip(COUNT_ROWS.iter()) {
        let rows = db.fetch_all(statement, args![]).await?;
        let count = rows.first().map(|row| row.int("n")).transpose()?;
        counts.push((
            (*table).to_owned(),
            count
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or_default(),
        ));
    }
    Ok(counts)
}
