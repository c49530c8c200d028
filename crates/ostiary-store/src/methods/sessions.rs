//! Sessions: admitting them under a session limit, finding, touching and ending them.

use ostiary_core::StoreError;
use ostiary_core::audit::AuditEvent;
use ostiary_core::client::ClientId;
use ostiary_core::clock::UnixTime;
use ostiary_core::secret::CredentialHash;
use ostiary_core::session::{EndReason, Session};
use ostiary_core::store::{SessionAdmission, SessionLimit};

use crate::methods::accounts::append_audit;
use crate::rows::{Columns, session_from_row};
use crate::shared::{LimitDecision, limit_decision};
use crate::sql::{Backend, FeedEntry, Statements, Transaction, args};

/// Ends one session and every refresh family in it, queues its back-channel logouts, audits
/// the ending and publishes its `sid` (at commit), inside the caller's transaction. `false`
/// (and nothing published) if it had already ended.
pub(crate) async fn end_in<T: Transaction>(
    tx: &mut T,
    sql: &Statements,
    sid: &str,
    now: UnixTime,
    reason: EndReason,
) -> Result<bool, StoreError> {
    let ended = tx
        .fetch_optional(sql.end_session, args![now, reason.as_str(), sid])
        .await?;
    let Some(row) = ended else {
        return Ok(false);
    };
    let user_id = row.text("user_id")?;
    let event = AuditEvent::session_ended(now, sid, &user_id, reason);
    append_audit(tx, sql.insert_audit_event, &event).await?;
    tx.execute(
        sql.end_families_of_session,
        args![now, reason.as_str(), sid],
    )
    .await?;
    tx.publish(FeedEntry {
        sid: Some(sid.to_owned()),
        jti: None,
        kid: None,
        revoked_at: now,
        reason: reason.as_str(),
    });
    // Back-channel logout is owed to every client with a logout endpoint that had tokens in
    // the session (it redeemed a code of it); queued here, so it survives a restart.
    tx.execute(sql.queue_backchannel_logouts, args![sid, now])
        .await?;
    Ok(true)
}

/// Applies a session limit to the live sessions in `rows` (a `sid` column, newest first)
/// before admitting one more for `by = (user_id, sid, now)`: `None` if the limit refuses it,
/// else the sessions it ended to make room (each audited as an eviction with `details`).
async fn within_limit<T: Transaction>(
    tx: &mut T,
    sql: &Statements,
    limit: &SessionLimit,
    rows: &[T::Row],
    (user_id, by_sid, now): (&str, &str, UnixTime),
    details: serde_json::Value,
) -> Result<Option<Vec<String>>, StoreError> {
    let oldest = match limit_decision(limit, rows.len()) {
        LimitDecision::Admit => return Ok(Some(Vec::new())),
        LimitDecision::Refuse => return Ok(None),
        LimitDecision::EvictFrom(oldest) => oldest,
    };
    let mut evicted = Vec::new();
    for row in &rows[oldest..] {
        let sid = row.text("sid")?;
        if end_in(tx, sql, &sid, now, EndReason::PolicyEviction).await? {
            let event = AuditEvent::session_evicted(now, &sid, user_id, by_sid, details.clone());
            append_audit(tx, sql.insert_audit_event, &event).await?;
            evicted.push(sid);
        }
    }
    Ok(Some(evicted))
}

pub(crate) async fn insert_session(
    db: &impl Backend,
    session: &Session,
    limit: SessionLimit,
    audit: &AuditEvent,
) -> Result<SessionAdmission, StoreError> {
    let sql = db.sql();
    let mut tx = db.begin().await?;
    let mut evicted = Vec::new();
    if limit.max > 0 {
        // The user's sessions are counted, evicted and inserted one login at a time; a
        // statement after the lock sees every session the previous holder committed.
        tx.lock(sql.lock_user, args![&session.user_id]).await?;
        let rows = tx
            .fetch_all(
                sql.live_sessions_of_user,
                args![&session.user_id, limit.idle_since, limit.absolute_since],
            )
            .await?;
        let details = serde_json::json!({"max_sessions_per_user": limit.max});
        let by = (&session.user_id[..], &session.sid[..], session.created_at);
        match within_limit(&mut tx, sql, &limit, &rows, by, details).await? {
            Some(ended) => evicted = ended,
            None => {
                tx.rollback().await?;
                return Ok(SessionAdmission::Refused);
            }
        }
    }
    tx.execute(
        sql.insert_session,
        args![
            &session.sid,
            &session.user_id,
            session.cookie_hash.as_ref().map(CredentialHash::as_str),
            session.auth_time,
            session.created_at,
            session.last_used_at,
            session.ended_at,
            &session.end_reason,
            &session.user_agent,
            &session.ip,
        ],
    )
    .await?;
    append_audit(&mut tx, sql.insert_audit_event, audit).await?;
    tx.commit().await?;
    Ok(SessionAdmission::Admitted { evicted })
}

pub(crate) async fn admit_client_session(
    db: &impl Backend,
    sid: &str,
    user_id: &str,
    client_id: &ClientId,
    now: UnixTime,
    limit: SessionLimit,
) -> Result<SessionAdmission, StoreError> {
    let sql = db.sql();
    let mut tx = db.begin().await?;
    if limit.max > 0 {
        tx.lock(sql.lock_user, args![user_id]).await?;
    }
    let known = tx
        .fetch_optional(sql.session_client_known, args![sid, client_id.as_str()])
        .await?;
    let mut evicted = Vec::new();
    if known.is_none() && limit.max > 0 {
        let rows = tx
            .fetch_all(
                sql.live_sessions_of_user_with_client,
                args![
                    user_id,
                    client_id.as_str(),
                    sid,
                    limit.idle_since,
                    limit.absolute_since
                ],
            )
            .await?;
        let details =
            serde_json::json!({"client_id": client_id, "max_sessions_per_user": limit.max});
        match within_limit(&mut tx, sql, &limit, &rows, (user_id, sid, now), details).await? {
            Some(ended) => evicted = ended,
            None => {
                tx.rollback().await?;
                return Ok(SessionAdmission::Refused);
            }
        }
    }
    tx.execute(
        sql.insert_session_client,
        args![sid, client_id.as_str(), user_id, now],
    )
    .await?;
    tx.commit().await?;
    Ok(SessionAdmission::Admitted { evicted })
}

pub(crate) async fn find_session(
    db: &impl Backend,
    sid: &str,
) -> Result<Option<Session>, StoreError> {
    let row = db.fetch_optional(db.sql().find_session, args![sid]).await?;
    row.as_ref().map(session_from_row).transpose()
}

pub(crate) async fn find_session_by_cookie(
    db: &impl Backend,
    cookie_hash: &CredentialHash,
) -> Result<Option<Session>, StoreError> {
    let row = db
        .fetch_optional(db.sql().find_session_by_cookie, args![cookie_hash.as_str()])
        .await?;
    row.as_ref().map(session_from_row).transpose()
}

pub(crate) async fn touch_session(
    db: &impl Backend,
    sid: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    db.execute(db.sql().touch_session, args![now, sid]).await?;
    Ok(())
}

pub(crate) async fn end_session(
    db: &impl Backend,
    sid: &str,
    now: UnixTime,
    reason: EndReason,
    cause: Option<&AuditEvent>,
) -> Result<bool, StoreError> {
    let sql = db.sql();
    let mut tx = db.begin().await?;
    if let Some(cause) = cause {
        append_audit(&mut tx, sql.insert_audit_event, cause).await?;
    }
    let ended = end_in(&mut tx, sql, sid, now, reason).await?;
    tx.commit().await?;
    Ok(ended)
}

pub(crate) async fn end_sessions_of_user(
    db: &impl Backend,
    user_id: &str,
    now: UnixTime,
    reason: EndReason,
) -> Result<Vec<String>, StoreError> {
    let sql = db.sql();
    let mut tx = db.begin().await?;
    // Locks sessions in the order a session limit does (user first), and after the lock
    // sees every session a concurrent login stored.
    tx.lock(sql.lock_user, args![user_id]).await?;
    let rows = tx.fetch_all(sql.sessions_of_user, args![user_id]).await?;
    let mut ended = Vec::with_capacity(rows.len());
    for row in &rows {
        let sid = row.text("sid")?;
        if end_in(&mut tx, sql, &sid, now, reason).await? {
            ended.push(sid);
        }
    }
    tx.commit().await?;
    Ok(ended)
}

pub(crate) async fn list_active_sessions(
    db: &impl Backend,
    user_id: Option<&str>,
) -> Result<Vec<(Session, Vec<String>)>, StoreError> {
    let sql = db.sql();
    let rows = match user_id {
        Some(user_id) => {
            db.fetch_all(sql.list_active_sessions_of_user, args![user_id])
                .await?
        }
        None => db.fetch_all(sql.list_active_sessions, args![]).await?,
    };
    rows.iter()
        .map(|row| Ok((session_from_row(row)?, row.text_list("clients")?)))
        .collect()
}

pub(crate) async fn list_expired_sessions(
    db: &impl Backend,
    idle_since: UnixTime,
    absolute_since: UnixTime,
    limit: u32,
) -> Result<Vec<Session>, StoreError> {
    let rows = db
        .fetch_all(
            db.sql().list_expired_sessions,
            args![idle_since, absolute_since, i64::from(limit)],
        )
        .await?;
    rows.iter().map(session_from_row).collect()
}
