//! Users, clients and the audit log.

use ostiary_core::StoreError;
use ostiary_core::audit::{AuditEvent, AuditFilter, AuditKind};
use ostiary_core::client::{Client, ClientId};
use ostiary_core::session::ClientPolicy;
use ostiary_core::user::{PasswordHashString, User, Username};

use crate::rows::{audit_from_row, client_from_row, user_from_row};
use crate::shared::{json_list, policy_json};
use crate::sql::{Backend, Transaction, args};

pub(crate) async fn insert_user(db: &impl Backend, user: &User) -> Result<(), StoreError> {
    db.insert(
        db.sql().insert_user,
        args![
            &user.id,
            user.username.as_str(),
            user.password_hash.as_str(),
            user.disabled,
            user.created_at
        ],
        "username",
    )
    .await
}

pub(crate) async fn find_user(db: &impl Backend, id: &str) -> Result<Option<User>, StoreError> {
    let row = db.fetch_optional(db.sql().find_user, args![id]).await?;
    row.as_ref().map(user_from_row).transpose()
}

pub(crate) async fn find_user_by_username(
    db: &impl Backend,
    username: &Username,
) -> Result<Option<User>, StoreError> {
    let row = db
        .fetch_optional(db.sql().find_user_by_username, args![username.as_str()])
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

pub(crate) async fn list_users(db: &impl Backend) -> Result<Vec<User>, StoreError> {
    let rows = db.fetch_all(db.sql().list_users, args![]).await?;
    rows.iter().map(user_from_row).collect()
}

pub(crate) async fn update_user_disabled(
    db: &impl Backend,
    username: &Username,
    disabled: bool,
) -> Result<bool, StoreError> {
    let changed = db
        .execute(
            db.sql().update_user_disabled,
            args![disabled, username.as_str()],
        )
        .await?;
    Ok(changed == 1)
}

pub(crate) async fn update_user_password(
    db: &impl Backend,
    user_id: &str,
    hash: &PasswordHashString,
) -> Result<bool, StoreError> {
    let changed = db
        .execute(db.sql().update_user_password, args![hash.as_str(), user_id])
        .await?;
    Ok(changed == 1)
}

pub(crate) async fn insert_client(db: &impl Backend, client: &Client) -> Result<(), StoreError> {
    let redirect_uris = json_list(&client.redirect_uris);
    let post_logout_redirect_uris = json_list(&client.post_logout_redirect_uris);
    let allowed_resources = json_list(&client.allowed_resources);
    let extra_scopes = json_list(&client.extra_scopes);
    let web_origins = json_list(&client.web_origins);
    let policy = policy_json(&client.policy)?;
    let mut tx = db.begin().await?;
    tx.insert(
        db.sql().insert_client,
        args![
            client.id.as_str(),
            client.kind.as_str(),
            client.secret_hash.as_ref().map(|h| h.as_str()),
            &redirect_uris,
            &post_logout_redirect_uris,
            &allowed_resources,
            &extra_scopes,
            &web_origins,
            client.backchannel_logout_uri.as_ref().map(|u| u.as_str()),
            &policy,
            client.created_at,
        ],
        "client id",
    )
    .await?;
    announce_client_change(db, &mut tx, client.id.as_str()).await?;
    tx.commit().await
}

pub(crate) async fn find_client(
    db: &impl Backend,
    id: &ClientId,
) -> Result<Option<Client>, StoreError> {
    let row = db
        .fetch_optional(db.sql().find_client, args![id.as_str()])
        .await?;
    row.as_ref().map(client_from_row).transpose()
}

pub(crate) async fn list_clients(db: &impl Backend) -> Result<Vec<Client>, StoreError> {
    let rows = db.fetch_all(db.sql().list_clients, args![]).await?;
    rows.iter().map(client_from_row).collect()
}

pub(crate) async fn update_client_policy(
    db: &impl Backend,
    id: &ClientId,
    policy: &ClientPolicy,
) -> Result<bool, StoreError> {
    let policy = policy_json(policy)?;
    let mut tx = db.begin().await?;
    let changed = tx
        .execute(db.sql().update_client_policy, args![&policy, id.as_str()])
        .await?;
    if changed == 1 {
        announce_client_change(db, &mut tx, id.as_str()).await?;
    }
    tx.commit().await?;
    Ok(changed == 1)
}

/// Tells the processes that listen, at commit, that a client changed (where the backend can).
async fn announce_client_change<B: Backend>(
    db: &B,
    tx: &mut B::Tx,
    client_id: &str,
) -> Result<(), StoreError> {
    if let Some(notify) = db.sql().notify_client_changed {
        tx.execute(notify, args![client_id]).await?;
    }
    Ok(())
}

/// The parameters of `insert_audit_event`, in its column order.
macro_rules! audit_args {
    ($event:expr, $details:expr) => {
        args![
            $event.at,
            $event.kind.as_str(),
            &$event.actor,
            &$event.user_id,
            &$event.sid,
            &$event.client_id,
            &$event.ip,
            &$event.user_agent,
            &$details,
        ]
    };
}

/// Appends an audit event, inside a transaction.
pub(crate) async fn append_audit<T: Transaction>(
    tx: &mut T,
    sql: &'static str,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    let details = event.details.to_string();
    tx.execute(sql, audit_args!(event, details)).await?;
    Ok(())
}

pub(crate) async fn insert_audit_event(
    db: &impl Backend,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    let details = event.details.to_string();
    db.execute(db.sql().insert_audit_event, audit_args!(event, details))
        .await?;
    Ok(())
}

pub(crate) async fn list_audit_events(
    db: &impl Backend,
    filter: &AuditFilter,
) -> Result<Vec<AuditEvent>, StoreError> {
    // Each condition is skipped when its parameter is NULL; the statement is the one whose
    // index finds the fewest rows (a user's or a session's), a walk by id otherwise.
    let sql = db.sql();
    let statement = match filter {
        AuditFilter {
            user_id: Some(_), ..
        } => sql.list_audit_events_of_user,
        AuditFilter { sid: Some(_), .. } => sql.list_audit_events_of_session,
        _ => sql.list_audit_events,
    };
    let rows = db
        .fetch_all(
            statement,
            args![
                &filter.user_id,
                &filter.sid,
                filter.kind.map(AuditKind::as_str),
                filter.since,
                filter.until,
                i64::from(filter.limit.unwrap_or(1000)),
            ],
        )
        .await?;
    rows.iter().map(audit_from_row).collect()
}
