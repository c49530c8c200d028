//! Signing keys.

use ostiary_core::StoreError;
use ostiary_core::audit::AuditEvent;
use ostiary_core::clock::UnixTime;
use ostiary_core::keys::{SigningAlgorithm, StoredKey};
use secrecy::ExposeSecret as _;

use crate::methods::accounts::append_audit;
use crate::rows::Columns;
use crate::shared::corrupt;
use crate::sql::{Backend, FeedEntry, Transaction, args};

/// The parameters of `insert_signing_key` and `upsert_signing_key`.
macro_rules! key_args {
    ($key:expr) => {
        args![
            &$key.kid,
            $key.alg.as_str(),
            $key.private_pkcs8.expose_secret(),
            $key.created_at,
            $key.activates_at,
        ]
    };
}

pub(crate) async fn list_signing_keys(db: &impl Backend) -> Result<Vec<StoredKey>, StoreError> {
    let rows = db.fetch_all(db.sql().list_signing_keys, args![]).await?;
    rows.iter()
        .map(|row| {
            Ok(StoredKey {
                kid: row.text("kid")?,
                alg: SigningAlgorithm::parse(&row.text("alg")?).map_err(corrupt)?,
                private_pkcs8: row
                    .opt_bytes("private_pkcs8")?
                    .ok_or_else(|| corrupt("a signing key without its private key"))?
                    .into(),
                created_at: row.int("created_at")?,
                activates_at: row.int("activates_at")?,
            })
        })
        .collect()
}

pub(crate) async fn insert_signing_key(
    db: &impl Backend,
    key: &StoredKey,
) -> Result<(), StoreError> {
    db.insert(db.sql().insert_signing_key, key_args!(key), "key id")
        .await
}

pub(crate) async fn insert_next_signing_key(
    db: &impl Backend,
    key: &StoredKey,
    after: UnixTime,
) -> Result<bool, StoreError> {
    let sql = db.sql();
    let mut tx = db.begin().await?;
    // Instances rotating at the same moment take turns here, so one next key is stored.
    tx.lock(sql.lock_signing_keys, args![]).await?;
    let pending = tx
        .fetch_optional(sql.pending_signing_key, args![key.alg.as_str(), after])
        .await?;
    if pending.is_some() {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.insert(sql.insert_signing_key, key_args!(key), "key id")
        .await?;
    tx.commit().await?;
    Ok(true)
}

pub(crate) async fn change_signing_keys(
    db: &impl Backend,
    keys: &[StoredKey],
    withdraw: &[String],
    now: UnixTime,
    audit: &[AuditEvent],
) -> Result<(), StoreError> {
    let sql = db.sql();
    let mut tx = db.begin().await?;
    for key in keys {
        tx.execute(sql.upsert_signing_key, key_args!(key)).await?;
    }
    for kid in withdraw {
        if tx.execute(sql.delete_signing_key, args![kid]).await? == 1 {
            tx.publish(FeedEntry {
                sid: None,
                jti: None,
                kid: Some(kid.clone()),
                revoked_at: now,
                reason: "signing_key_withdrawn",
            });
        }
    }
    for event in audit {
        append_audit(&mut tx, sql.insert_audit_event, event).await?;
    }
    tx.commit().await
}

pub(crate) async fn delete_signing_key(db: &impl Backend, kid: &str) -> Result<bool, StoreError> {
    Ok(db.execute(db.sql().delete_signing_key, args![kid]).await? == 1)
}
