//! [`TextGuard`]: the text every store accepts, whatever the backend.
//!
//! SQLite keeps any string; PostgreSQL's `text` refuses NUL (`\0`) with an error that would
//! otherwise surface as a storage outage. The HTTP edge already rejects NUL in every parameter
//! (`ostiary-server`'s `params`), and the validated newtypes (usernames, client ids, URIs)
//! never hold one; this guard makes the rule the store's own, so that the answer to such text
//! is the same on every backend and never [`StoreError::Unavailable`]:
//!
//! - a lookup, listing or change *by* such text finds nothing (`None`, empty, `false`, 0):
//!   no stored row can have it;
//! - a write *of* such text is refused with [`StoreError::InvalidInput`], naming the field;
//! - diagnostic text the store keeps for operators (a failed back-channel delivery's error)
//!   has NUL replaced by U+FFFD instead, so that the outcome is still recorded.
//!
//! [`crate::open`] wraps every store in it. Since it implements [`Store`] itself, a new store
//! method cannot be added without deciding here what its text may be.

use std::sync::Arc;

use async_trait::async_trait;
use ostiary_core::audit::{AuditEvent, AuditFilter};
use ostiary_core::client::{Client, ClientId};
use ostiary_core::clock::UnixTime;
use ostiary_core::code::{AuthorizationCode, CodeConsumption};
use ostiary_core::keys::StoredKey;
use ostiary_core::refresh::RefreshFamily;
use ostiary_core::retention::Prunable;
use ostiary_core::secret::CredentialHash;
use ostiary_core::session::{ClientPolicy, EndReason, Session};
use ostiary_core::store::{
    BackchannelDelivery, ChangeListener, DeliveryOutcome, LoginAttempt, RefreshGrant,
    RevocationEntry, Rotation, RotationOutcome, SessionAdmission, SessionLimit, Store, StoreError,
    ThrottleKey, ThrottleReport,
};
use ostiary_core::throttle::ThrottlePolicy;
use ostiary_core::user::{PasswordHashString, User, Username};

/// Whether `text` can be stored by every backend.
pub fn storable(text: &str) -> bool {
    !text.contains('\0')
}

/// `Ok` if every text is storable, else [`StoreError::InvalidInput`] naming the first field
/// that is not.
fn check<'a>(
    fields: impl IntoIterator<Item = (&'static str, Option<&'a str>)>,
) -> Result<(), StoreError> {
    for (name, text) in fields {
        if text.is_some_and(|t| !storable(t)) {
            return Err(StoreError::InvalidInput(name));
        }
    }
    Ok(())
}

fn check_all<'a>(
    name: &'static str,
    texts: impl IntoIterator<Item = &'a str>,
) -> Result<(), StoreError> {
    check(texts.into_iter().map(|t| (name, Some(t))))
}

fn check_user(user: &User) -> Result<(), StoreError> {
    check([
        ("user id", Some(user.id.as_str())),
        ("username", Some(user.username.as_str())),
        ("password hash", Some(user.password_hash.as_str())),
    ])
}

fn check_client(client: &Client) -> Result<(), StoreError> {
    check([("client id", Some(client.id.as_str()))])?;
    check_all(
        "redirect URI",
        client.redirect_uris.iter().map(|u| u.as_str()),
    )?;
    check_all(
        "post-logout redirect URI",
        client.post_logout_redirect_uris.iter().map(|u| u.as_str()),
    )?;
    check_all(
        "resource",
        client.allowed_resources.iter().map(String::as_str),
    )?;
    check_all("scope", client.extra_scopes.iter().map(String::as_str))?;
    check_all("web origin", client.web_origins.iter().map(|o| o.as_str()))?;
    check([(
        "back-channel logout URI",
        client.backchannel_logout_uri.as_ref().map(|u| u.as_str()),
    )])
}

fn check_session(session: &Session) -> Result<(), StoreError> {
    check([
        ("sid", Some(session.sid.as_str())),
        ("user id", Some(session.user_id.as_str())),
        ("user agent", session.user_agent.as_deref()),
        ("ip", session.ip.as_deref()),
    ])
}

fn check_audit(event: &AuditEvent) -> Result<(), StoreError> {
    // `details` is stored as JSON text, in which NUL is the escape `\u0000`: always storable.
    check([
        ("audit actor", Some(event.actor.as_str())),
        ("audit user", event.user_id.as_deref()),
        ("audit sid", event.sid.as_deref()),
        ("audit client", event.client_id.as_deref()),
        ("audit ip", event.ip.as_deref()),
        ("audit user agent", event.user_agent.as_deref()),
    ])
}

fn check_code(code: &AuthorizationCode) -> Result<(), StoreError> {
    check([
        ("client id", Some(code.client_id.as_str())),
        ("redirect URI", Some(code.redirect_uri.as_str())),
        ("sid", Some(code.sid.as_str())),
        ("user id", Some(code.user_id.as_str())),
        ("resource", Some(code.resource.as_str())),
        ("code challenge", Some(code.code_challenge.as_str())),
        ("DPoP key thumbprint", code.dpop_jkt.as_deref()),
        ("nonce", code.nonce.as_deref()),
    ])
}

fn check_family(family: &RefreshFamily) -> Result<(), StoreError> {
    check([
        ("family id", Some(family.id.as_str())),
        ("sid", Some(family.sid.as_str())),
        ("client id", Some(family.client_id.as_str())),
        ("user id", Some(family.user_id.as_str())),
        ("resource", Some(family.resource.as_str())),
        ("ip", family.last_use_ip.as_deref()),
        ("user agent", family.last_use_user_agent.as_deref()),
        ("DPoP key thumbprint", family.dpop_jkt.as_deref()),
    ])
}

fn check_keys(keys: &[ThrottleKey]) -> Result<(), StoreError> {
    for key in keys {
        check([
            ("throttle key", Some(key.key.as_str())),
            ("username", key.username.as_deref()),
        ])?;
    }
    Ok(())
}

/// A [`Store`] that applies the module's rules before handing a call to `inner`.
#[derive(Clone)]
pub struct TextGuard {
    inner: Arc<dyn Store>,
}

impl TextGuard {
    /// Guards `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl Store for TextGuard {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        check_user(user)?;
        self.inner.insert_user(user).await
    }

    async fn find_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        if !storable(id) {
            return Ok(None);
        }
        self.inner.find_user(id).await
    }

    async fn find_user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        if !storable(username.as_str()) {
            return Ok(None);
        }
        self.inner.find_user_by_username(username).await
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.inner.list_users().await
    }

    async fn update_user_password(
        &self,
        user_id: &str,
        hash: &PasswordHashString,
    ) -> Result<bool, StoreError> {
        if !storable(user_id) {
            return Ok(false);
        }
        check([("password hash", Some(hash.as_str()))])?;
        self.inner.update_user_password(user_id, hash).await
    }

    async fn update_user_disabled(
        &self,
        username: &Username,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        if !storable(username.as_str()) {
            return Ok(false);
        }
        self.inner.update_user_disabled(username, disabled).await
    }

    async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        check_client(client)?;
        self.inner.insert_client(client).await
    }

    async fn find_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        if !storable(id.as_str()) {
            return Ok(None);
        }
        self.inner.find_client(id).await
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        self.inner.list_clients().await
    }

    async fn update_client_policy(
        &self,
        id: &ClientId,
        policy: &ClientPolicy,
    ) -> Result<bool, StoreError> {
        if !storable(id.as_str()) {
            return Ok(false);
        }
        self.inner.update_client_policy(id, policy).await
    }

    async fn list_signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.inner.list_signing_keys().await
    }

    async fn insert_signing_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        check([("kid", Some(key.kid.as_str()))])?;
        self.inner.insert_signing_key(key).await
    }

    async fn insert_next_signing_key(
        &self,
        key: &StoredKey,
        after: UnixTime,
    ) -> Result<bool, StoreError> {
        check([("kid", Some(key.kid.as_str()))])?;
        self.inner.insert_next_signing_key(key, after).await
    }

    async fn change_signing_keys(
        &self,
        keys: &[StoredKey],
        withdraw: &[String],
        now: UnixTime,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError> {
        check_all("kid", keys.iter().map(|k| k.kid.as_str()))?;
        check_all("kid", withdraw.iter().map(String::as_str))?;
        for event in audit {
            check_audit(event)?;
        }
        self.inner
            .change_signing_keys(keys, withdraw, now, audit)
            .await
    }

    async fn delete_signing_key(&self, kid: &str) -> Result<bool, StoreError> {
        if !storable(kid) {
            return Ok(false);
        }
        self.inner.delete_signing_key(kid).await
    }

    async fn insert_session(
        &self,
        session: &Session,
        limit: SessionLimit,
        audit: &AuditEvent,
    ) -> Result<SessionAdmission, StoreError> {
        check_session(session)?;
        check_audit(audit)?;
        self.inner.insert_session(session, limit, audit).await
    }

    async fn admit_client_session(
        &self,
        sid: &str,
        user_id: &str,
        client_id: &ClientId,
        now: UnixTime,
        limit: SessionLimit,
    ) -> Result<SessionAdmission, StoreError> {
        check([
            ("sid", Some(sid)),
            ("user id", Some(user_id)),
            ("client id", Some(client_id.as_str())),
        ])?;
        self.inner
            .admit_client_session(sid, user_id, client_id, now, limit)
            .await
    }

    async fn find_session(&self, sid: &str) -> Result<Option<Session>, StoreError> {
        if !storable(sid) {
            return Ok(None);
        }
        self.inner.find_session(sid).await
    }

    async fn find_session_by_cookie(
        &self,
        cookie_hash: &CredentialHash,
    ) -> Result<Option<Session>, StoreError> {
        self.inner.find_session_by_cookie(cookie_hash).await
    }

    async fn touch_session(&self, sid: &str, now: UnixTime) -> Result<(), StoreError> {
        if !storable(sid) {
            return Ok(());
        }
        self.inner.touch_session(sid, now).await
    }

    async fn end_session(
        &self,
        sid: &str,
        now: UnixTime,
        reason: EndReason,
        cause: Option<&AuditEvent>,
    ) -> Result<bool, StoreError> {
        if let Some(cause) = cause {
            check_audit(cause)?;
        }
        if !storable(sid) {
            return Ok(false);
        }
        self.inner.end_session(sid, now, reason, cause).await
    }

    async fn end_sessions_of_user(
        &self,
        user_id: &str,
        now: UnixTime,
        reason: EndReason,
    ) -> Result<Vec<String>, StoreError> {
        if !storable(user_id) {
            return Ok(Vec::new());
        }
        self.inner.end_sessions_of_user(user_id, now, reason).await
    }

    async fn list_active_sessions(
        &self,
        user_id: Option<&str>,
    ) -> Result<Vec<(Session, Vec<String>)>, StoreError> {
        if user_id.is_some_and(|u| !storable(u)) {
            return Ok(Vec::new());
        }
        self.inner.list_active_sessions(user_id).await
    }

    async fn insert_authorization_code(&self, code: &AuthorizationCode) -> Result<(), StoreError> {
        check_code(code)?;
        self.inner.insert_authorization_code(code).await
    }

    async fn find_authorization_code(
        &self,
        code_hash: &CredentialHash,
    ) -> Result<Option<AuthorizationCode>, StoreError> {
        self.inner.find_authorization_code(code_hash).await
    }

    async fn consume_authorization_code(
        &self,
        code_hash: &CredentialHash,
        client_id: &ClientId,
        now: UnixTime,
    ) -> Result<CodeConsumption, StoreError> {
        if !storable(client_id.as_str()) {
            return Ok(CodeConsumption::Unknown);
        }
        self.inner
            .consume_authorization_code(code_hash, client_id, now)
            .await
    }

    async fn insert_refresh_family(
        &self,
        family: &RefreshFamily,
        first_token: &CredentialHash,
    ) -> Result<(), StoreError> {
        check_family(family)?;
        self.inner.insert_refresh_family(family, first_token).await
    }

    async fn find_refresh_token(
        &self,
        token_hash: &CredentialHash,
    ) -> Result<Option<(RefreshFamily, i64)>, StoreError> {
        self.inner.find_refresh_token(token_hash).await
    }

    async fn find_refresh_grant(
        &self,
        token_hash: &CredentialHash,
    ) -> Result<Option<RefreshGrant>, StoreError> {
        self.inner.find_refresh_grant(token_hash).await
    }

    async fn find_refresh_family(
        &self,
        family_id: &str,
    ) -> Result<Option<RefreshFamily>, StoreError> {
        if !storable(family_id) {
            return Ok(None);
        }
        self.inner.find_refresh_family(family_id).await
    }

    async fn rotate_refresh(&self, rotation: &Rotation) -> Result<RotationOutcome, StoreError> {
        check([
            ("ip", rotation.ip.as_deref()),
            ("user agent", rotation.user_agent.as_deref()),
            (
                "key thumbprint",
                rotation.dpop_proof.as_ref().map(|p| p.jkt.as_str()),
            ),
            (
                "proof id",
                rotation.dpop_proof.as_ref().map(|p| p.jti_hash.as_str()),
            ),
        ])?;
        check_audit(&rotation.audit)?;
        if !storable(&rotation.family_id) {
            return Ok(RotationOutcome::Lost {
                proof_recorded: false,
            });
        }
        self.inner.rotate_refresh(rotation).await
    }

    async fn reissue_successor(
        &self,
        family_id: &str,
        generation: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        check_audit(audit)?;
        if !storable(family_id) {
            return Ok(false);
        }
        self.inner
            .reissue_successor(family_id, generation, audit)
            .await
    }

    async fn end_refresh_family(
        &self,
        family_id: &str,
        now: UnixTime,
        reason: EndReason,
    ) -> Result<bool, StoreError> {
        if !storable(family_id) {
            return Ok(false);
        }
        self.inner.end_refresh_family(family_id, now, reason).await
    }

    async fn use_dpop_proof(
        &self,
        jkt: &str,
        jti_hash: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        check([("key thumbprint", Some(jkt)), ("proof id", Some(jti_hash))])?;
        self.inner
            .use_dpop_proof(jkt, jti_hash, expires_at, now)
            .await
    }

    async fn insert_revoked_access_token(
        &self,
        jti: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        check([("jti", Some(jti))])?;
        self.inner
            .insert_revoked_access_token(jti, expires_at, now)
            .await
    }

    async fn list_revocations(
        &self,
        after_seq: i64,
        since: UnixTime,
        limit: u32,
    ) -> Result<Vec<RevocationEntry>, StoreError> {
        self.inner.list_revocations(after_seq, since, limit).await
    }

    async fn latest_revocation_seq(&self) -> Result<i64, StoreError> {
        self.inner.latest_revocation_seq().await
    }

    async fn claim_backchannel_deliveries(
        &self,
        now: UnixTime,
        lease: i64,
        limit: u32,
    ) -> Result<Vec<BackchannelDelivery>, StoreError> {
        self.inner
            .claim_backchannel_deliveries(now, lease, limit)
            .await
    }

    async fn record_backchannel_attempt(
        &self,
        id: i64,
        now: UnixTime,
        outcome: &DeliveryOutcome,
    ) -> Result<(), StoreError> {
        // An error text from the network is kept for operators, not refused.
        let clean = |error: &str| error.replace('\0', "\u{FFFD}");
        let outcome = match outcome {
            DeliveryOutcome::Delivered => DeliveryOutcome::Delivered,
            DeliveryOutcome::Retry { retry_at, error } => DeliveryOutcome::Retry {
                retry_at: *retry_at,
                error: clean(error),
            },
            DeliveryOutcome::GaveUp { error } => DeliveryOutcome::GaveUp {
                error: clean(error),
            },
        };
        self.inner
            .record_backchannel_attempt(id, now, &outcome)
            .await
    }

    async fn list_undelivered_backchannel(&self) -> Result<Vec<BackchannelDelivery>, StoreError> {
        self.inner.list_undelivered_backchannel().await
    }

    async fn insert_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
        check_audit(event)?;
        self.inner.insert_audit_event(event).await
    }

    async fn list_audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        let by_text = [filter.user_id.as_deref(), filter.sid.as_deref()];
        if by_text.into_iter().flatten().any(|t| !storable(t)) {
            return Ok(Vec::new());
        }
        self.inner.list_audit_events(filter).await
    }

    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        if !storable(jti) {
            return Ok(false);
        }
        self.inner.is_access_token_revoked(jti).await
    }

    async fn begin_login_attempt(
        &self,
        keys: &[ThrottleKey],
        now: UnixTime,
        policy: &ThrottlePolicy,
    ) -> Result<LoginAttempt, StoreError> {
        check_keys(keys)?;
        self.inner.begin_login_attempt(keys, now, policy).await
    }

    async fn record_login_success(
        &self,
        keys: &[ThrottleKey],
        aggregated_into: Option<usize>,
    ) -> Result<(), StoreError> {
        check_keys(keys)?;
        self.inner.record_login_success(keys, aggregated_into).await
    }

    async fn clear_login_counters(&self, username: &str) -> Result<u64, StoreError> {
        if !storable(username) {
            return Ok(0);
        }
        self.inner.clear_login_counters(username).await
    }

    async fn claim_job(
        &self,
        name: &str,
        holder: &str,
        now: UnixTime,
        lease: i64,
    ) -> Result<bool, StoreError> {
        check([("job", Some(name)), ("job holder", Some(holder))])?;
        self.inner.claim_job(name, holder, now, lease).await
    }

    async fn list_expired_sessions(
        &self,
        idle_since: UnixTime,
        absolute_since: UnixTime,
        limit: u32,
    ) -> Result<Vec<Session>, StoreError> {
        self.inner
            .list_expired_sessions(idle_since, absolute_since, limit)
            .await
    }

    async fn prune(&self, what: Prunable, before: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.inner.prune(what, before, limit).await
    }

    async fn prune_login_counters(
        &self,
        before: UnixTime,
        limit: u32,
    ) -> Result<(u64, Vec<ThrottleReport>), StoreError> {
        self.inner.prune_login_counters(before, limit).await
    }

    async fn row_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner.row_counts().await
    }

    async fn listen(&self, listener: Arc<dyn ChangeListener>) -> Result<bool, StoreError> {
        self.inner.listen(listener).await
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        self.inner.check_ready().await
    }
}
