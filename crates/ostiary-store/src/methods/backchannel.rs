//! The back-channel logout queue (OpenID Connect Back-Channel Logout 1.0).

use ostiary_core::StoreError;
use ostiary_core::clock::UnixTime;
use ostiary_core::store::{BackchannelDelivery, DeliveryOutcome};

use crate::rows::delivery_from_row;
use crate::sql::{Backend, args};

pub(crate) async fn claim_backchannel_deliveries(
    db: &impl Backend,
    now: UnixTime,
    lease: i64,
    limit: u32,
) -> Result<Vec<BackchannelDelivery>, StoreError> {
    // Claiming pushes next_attempt_at past the lease in the statement that selects: two
    // instances never take the same delivery at once.
    let rows = db
        .fetch_all(
            db.sql().claim_backchannel_deliveries,
            args![now, lease, i64::from(limit)],
        )
        .await?;
    rows.iter().map(delivery_from_row).collect()
}

pub(crate) async fn record_backchannel_attempt(
    db: &impl Backend,
    id: i64,
    now: UnixTime,
    outcome: &DeliveryOutcome,
) -> Result<(), StoreError> {
    let sql = db.sql();
    match outcome {
        DeliveryOutcome::Delivered => {
            db.execute(sql.backchannel_delivered, args![now, id])
                .await?
        }
        DeliveryOutcome::Retry { retry_at, error } => {
            db.execute(sql.backchannel_retry, args![*retry_at, error.as_str(), id])
                .await?
        }
        DeliveryOutcome::GaveUp { error } => {
            db.execute(sql.backchannel_gave_up, args![now, error.as_str(), id])
                .await?
        }
    };
    Ok(())
}

pub(crate) async fn list_undelivered_backchannel(
    db: &impl Backend,
) -> Result<Vec<BackchannelDelivery>, StoreError> {
    let rows = db
        .fetch_all(db.sql().list_undelivered_backchannel, args![])
        .await?;
    rows.iter().map(delivery_from_row).collect()
}
