//! Login throttling's counters (the decisions are [`ostiary_core::throttle`]'s and
//! [`crate::shared::plan_login_attempt`]'s).

use ostiary_core::StoreError;
use ostiary_core::clock::UnixTime;
use ostiary_core::store::{LoginAttempt, ThrottleKey};
use ostiary_core::throttle::ThrottlePolicy;

use crate::rows::counter_from_row;
use crate::shared::plan_login_attempt;
use crate::sql::{Backend, Transaction, args};

pub(crate) async fn begin_login_attempt(
    db: &impl Backend,
    keys: &[ThrottleKey],
    now: UnixTime,
    policy: &ThrottlePolicy,
) -> Result<LoginAttempt, StoreError> {
    let sql = db.sql();
    let mut tx = db.begin().await?;
    // Lock (creating empty) every counter of this attempt, in key order, so that two
    // attempts sharing counters wait for each other instead of deadlocking.
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|a, b| keys[*a].key.cmp(&keys[*b].key));
    let mut rows = vec![None; keys.len()];
    for index in order {
        let key = &keys[index];
        tx.execute(sql.ensure_login_counter, args![&key.key, &key.username])
            .await?;
        let row = tx
            .fetch_optional(sql.lock_login_counter, args![&key.key])
            .await?;
        rows[index] = row.as_ref().map(counter_from_row).transpose()?;
    }
    let plan = plan_login_attempt(keys, &rows, now, policy);
    for (index, row) in &plan.writes {
        tx.execute(
            sql.update_login_counter,
            args![
                &keys[*index].key,
                row.failures,
                row.last_failure_at,
                row.aggregated,
                row.aggregate_since,
                row.reported_at,
            ],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(plan.attempt)
}

pub(crate) async fn record_login_success(
    db: &impl Backend,
    keys: &[ThrottleKey],
    aggregated_into: Option<usize>,
) -> Result<(), StoreError> {
    let Some((first, others)) = keys.split_first() else {
        return Ok(());
    };
    let sql = db.sql();
    let mut tx = db.begin().await?;
    // Lock the counters in key order, the order `begin_login_attempt` locks them in, so
    // that a success and a concurrent attempt wait for each other instead of deadlocking.
    let mut sorted: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
    sorted.sort_unstable();
    tx.lock(sql.lock_login_counters, args![sorted.as_slice()])
        .await?;
    tx.execute(sql.delete_login_counter, args![&first.key])
        .await?;
    for (index, key) in others.iter().enumerate() {
        let aggregated = i64::from(aggregated_into == Some(index + 1));
        tx.execute(sql.decrement_login_counter, args![aggregated, &key.key])
            .await?;
    }
    tx.commit().await
}

pub(crate) async fn clear_login_counters(
    db: &impl Backend,
    username: &str,
) -> Result<u64, StoreError> {
    db.execute(db.sql().clear_login_counters, args![username])
        .await
}
