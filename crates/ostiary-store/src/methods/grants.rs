//! Authorization codes, refresh families and access tokens: issuing, consuming, ending and
//! revoking them, and the revocation feed they publish to. (The refresh grant's own read and
//! rotation are each backend's: its hot path.)

use ostiary_core::StoreError;
use ostiary_core::audit::AuditEvent;
use ostiary_core::client::ClientId;
use ostiary_core::clock::UnixTime;
use ostiary_core::code::{AuthorizationCode, CodeConsumption};
use ostiary_core::refresh::RefreshFamily;
use ostiary_core::secret::CredentialHash;
use ostiary_core::session::EndReason;
use ostiary_core::store::RevocationEntry;

use crate::methods::accounts::append_audit;
use crate::rows::{Columns, code_from_row, family_from_row};
use crate::sql::{Backend, FeedEntry, Statements, Transaction, args};

/// Records an access token as revoked until it expires and publishes its `jti` (at commit),
/// inside the caller's transaction; `false` (nothing published) if it already was.
async fn revoke_access_token_in<T: Transaction>(
    tx: &mut T,
    sql: &Statements,
    jti: &str,
    expires_at: UnixTime,
    now: UnixTime,
    reason: &'static str,
) -> Result<bool, StoreError> {
    let new = tx
        .execute(sql.insert_revoked_access_token, args![jti, expires_at])
        .await?
        == 1;
    if new {
        tx.publish(FeedEntry {
            sid: None,
            jti: Some(jti.to_owned()),
            kid: None,
            revoked_at: now,
            reason,
        });
    }
    Ok(new)
}

pub(crate) async fn insert_authorization_code(
    db: &impl Backend,
    code: &AuthorizationCode,
) -> Result<(), StoreError> {
    let scope = code.scope.to_string();
    db.execute(
        db.sql().insert_authorization_code,
        args![
            code.code_hash.as_str(),
            code.client_id.as_str(),
            &code.redirect_uri,
            &code.sid,
            &code.user_id,
            &scope,
            &code.resource,
            code.code_challenge.as_str(),
            &code.nonce,
            code.auth_time,
            code.created_at,
            code.expires_at,
            &code.dpop_jkt,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn find_authorization_code(
    db: &impl Backend,
    code_hash: &CredentialHash,
) -> Result<Option<AuthorizationCode>, StoreError> {
    let row = db
        .fetch_optional(db.sql().find_authorization_code, args![code_hash.as_str()])
        .await?;
    row.as_ref().map(code_from_row).transpose()
}

pub(crate) async fn consume_authorization_code(
    db: &impl Backend,
    code_hash: &CredentialHash,
    client_id: &ClientId,
    now: UnixTime,
) -> Result<CodeConsumption, StoreError> {
    let sql = db.sql();
    let mut tx = db.begin().await?;
    let won = tx
        .fetch_optional(
            sql.consume_authorization_code,
            args![now, code_hash.as_str(), client_id.as_str()],
        )
        .await?;
    if let Some(row) = won {
        tx.commit().await?;
        return Ok(CodeConsumption::First(code_from_row(&row)?));
    }
    let seen = tx
        .fetch_optional(sql.find_authorization_code, args![code_hash.as_str()])
        .await?;
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

pub(crate) async fn insert_refresh_family(
    db: &impl Backend,
    family: &RefreshFamily,
    first_token: &CredentialHash,
) -> Result<(), StoreError> {
    let sql = db.sql();
    let scope = family.scope.to_string();
    let mut tx = db.begin().await?;
    tx.execute(
        sql.insert_refresh_family,
        args![
            &family.id,
            &family.sid,
            family.client_id.as_str(),
            &family.user_id,
            &scope,
            &family.resource,
            family.generation,
            family.rotated_at,
            &family.sealed_successor,
            family.created_at,
            family.ended_at,
            &family.end_reason,
            family.code_hash.as_ref().map(CredentialHash::as_str),
            &family.last_use_ip,
            &family.last_use_user_agent,
            &family.dpop_jkt,
        ],
    )
    .await?;
    tx.execute(
        sql.insert_refresh_token,
        args![first_token.as_str(), &family.id, family.generation],
    )
    .await?;
    tx.commit().await
}

pub(crate) async fn find_refresh_token(
    db: &impl Backend,
    token_hash: &CredentialHash,
) -> Result<Option<(RefreshFamily, i64)>, StoreError> {
    let row = db
        .fetch_optional(db.sql().find_refresh_token, args![token_hash.as_str()])
        .await?;
    row.map(|row| Ok((family_from_row(&row)?, row.int("token_generation")?)))
        .transpose()
}

pub(crate) async fn find_refresh_family(
    db: &impl Backend,
    family_id: &str,
) -> Result<Option<RefreshFamily>, StoreError> {
    let row = db
        .fetch_optional(db.sql().find_refresh_family, args![family_id])
        .await?;
    row.as_ref().map(family_from_row).transpose()
}

pub(crate) async fn reissue_successor(
    db: &impl Backend,
    family_id: &str,
    generation: i64,
    audit: &AuditEvent,
) -> Result<bool, StoreError> {
    let sql = db.sql();
    let mut tx = db.begin().await?;
    let marked = tx
        .execute(sql.mark_successor_reissued, args![family_id, generation])
        .await?;
    if marked != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    append_audit(&mut tx, sql.insert_audit_event, audit).await?;
    tx.commit().await?;
    Ok(true)
}

pub(crate) async fn end_refresh_family(
    db: &impl Backend,
    family_id: &str,
    now: UnixTime,
    reason: EndReason,
) -> Result<bool, StoreError> {
    let sql = db.sql();
    let mut tx = db.begin().await?;
    let ended = tx
        .fetch_optional(
            sql.end_refresh_family,
            args![now, reason.as_str(), family_id],
        )
        .await?;
    if let Some(row) = &ended {
        // Unless the client holds another live family there, it no longer holds tokens in
        // that session: it stops counting towards the client's session limit.
        let sid = row.text("sid")?;
        let client_id = row.text("client_id")?;
        tx.execute(sql.forget_session_client, args![&sid, &client_id])
            .await?;
    }
    tx.commit().await?;
    Ok(ended.is_some())
}

pub(crate) async fn insert_revoked_access_token(
    db: &impl Backend,
    jti: &str,
    expires_at: UnixTime,
    now: UnixTime,
) -> Result<(), StoreError> {
    let sql = db.sql();
    let mut tx = db.begin().await?;
    revoke_access_token_in(&mut tx, sql, jti, expires_at, now, "access_token_revoked").await?;
    tx.commit().await
}

pub(crate) async fn is_access_token_revoked(
    db: &impl Backend,
    jti: &str,
) -> Result<bool, StoreError> {
    let row = db
        .fetch_optional(db.sql().is_access_token_revoked, args![jti])
        .await?;
    Ok(row.is_some())
}

pub(crate) async fn list_revocations(
    db: &impl Backend,
    after_seq: i64,
    since: UnixTime,
    limit: u32,
) -> Result<Vec<RevocationEntry>, StoreError> {
    let rows = db
        .fetch_all(
            db.sql().list_revocations,
            args![after_seq, since, i64::from(limit)],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(RevocationEntry {
                seq: row.int("seq")?,
                sid: row.opt_text("sid")?,
                jti: row.opt_text("jti")?,
                kid: row.opt_text("kid")?,
                revoked_at: row.int("revoked_at")?,
                reason: row.text("reason")?,
            })
        })
        .collect()
}
