//! A store that counts the calls made to it, by method (feature `testing`): tests pin how
//! many store round trips a use case makes (the refresh grant: one read and one write), so
//! that the number cannot grow back unnoticed. Every method of [`Store`] delegates to the
//! wrapped store; each call is one statement or one transaction on both backends.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;

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

/// Wraps a store and counts the calls made through it.
pub struct CountingStore {
    inner: Arc<dyn Store>,
    calls: Mutex<BTreeMap<&'static str, u64>>,
}

impl CountingStore {
    /// Counts the calls to `inner` from now on.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            calls: Mutex::default(),
        }
    }

    fn count(&self, method: &'static str) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        *calls.entry(method).or_default() += 1;
    }

    /// The calls counted since the last `take`, by method name; the counts start again at 0.
    pub fn take(&self) -> BTreeMap<&'static str, u64> {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *calls)
    }
}

impl std::fmt::Debug for CountingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CountingStore")
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        self.count("insert_user");
        self.inner.insert_user(user).await
    }

    async fn find_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.count("find_user");
        self.inner.find_user(id).await
    }

    async fn find_user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        self.count("find_user_by_username");
        self.inner.find_user_by_username(username).await
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.count("list_users");
        self.inner.list_users().await
    }

    async fn update_user_password(
        &self,
        user_id: &str,
        hash: &PasswordHashString,
    ) -> Result<bool, StoreError> {
        self.count("update_user_password");
        self.inner.update_user_password(user_id, hash).await
    }

    async fn update_user_disabled(
        &self,
        username: &Username,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        self.count("update_user_disabled");
        self.inner.update_user_disabled(username, disabled).await
    }

    async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        self.count("insert_client");
        self.inner.insert_client(client).await
    }

    async fn find_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        self.count("find_client");
        self.inner.find_client(id).await
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        self.count("list_clients");
        self.inner.list_clients().await
    }

    async fn update_client_policy(
        &self,
        id: &ClientId,
        policy: &ClientPolicy,
    ) -> Result<bool, StoreError> {
        self.count("update_client_policy");
        self.inner.update_client_policy(id, policy).await
    }

    async fn list_signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.count("list_signing_keys");
        self.inner.list_signing_keys().await
    }

    async fn insert_signing_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        self.count("insert_signing_key");
        self.inner.insert_signing_key(key).await
    }

    async fn insert_next_signing_key(
        &self,
        key: &StoredKey,
        after: UnixTime,
    ) -> Result<bool, StoreError> {
        self.count("insert_next_signing_key");
        self.inner.insert_next_signing_key(key, after).await
    }

    async fn change_signing_keys(
        &self,
        keys: &[StoredKey],
        withdraw: &[String],
        now: UnixTime,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError> {
        self.count("change_signing_keys");
        self.inner
            .change_signing_keys(keys, withdraw, now, audit)
            .await
    }

    async fn delete_signing_key(&self, kid: &str) -> Result<bool, StoreError> {
        self.count("delete_signing_key");
        self.inner.delete_signing_key(kid).await
    }

    async fn insert_session(
        &self,
        session: &Session,
        limit: SessionLimit,
        audit: &AuditEvent,
    ) -> Result<SessionAdmission, StoreError> {
        self.count("insert_session");
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
        self.count("admit_client_session");
        self.inner
            .admit_client_session(sid, user_id, client_id, now, limit)
            .await
    }

    async fn find_session(&self, sid: &str) -> Result<Option<Session>, StoreError> {
        self.count("find_session");
        self.inner.find_session(sid).await
    }

    async fn find_session_by_cookie(
        &self,
        cookie_hash: &CredentialHash,
    ) -> Result<Option<Session>, StoreError> {
        self.count("find_session_by_cookie");
        self.inner.find_session_by_cookie(cookie_hash).await
    }

    async fn touch_session(&self, sid: &str, now: UnixTime) -> Result<(), StoreError> {
        self.count("touch_session");
        self.inner.touch_session(sid, now).await
    }

    async fn end_session(
        &self,
        sid: &str,
        now: UnixTime,
        reason: EndReason,
        cause: Option<&AuditEvent>,
    ) -> Result<bool, StoreError> {
        self.count("end_session");
        self.inner.end_session(sid, now, reason, cause).await
    }

    async fn end_sessions_of_user(
        &self,
        user_id: &str,
        now: UnixTime,
        reason: EndReason,
    ) -> Result<Vec<String>, StoreError> {
        self.count("end_sessions_of_user");
        self.inner.end_sessions_of_user(user_id, now, reason).await
    }

    async fn list_active_sessions(
        &self,
        user_id: Option<&str>,
    ) -> Result<Vec<(Session, Vec<String>)>, StoreError> {
        self.count("list_active_sessions");
        self.inner.list_active_sessions(user_id).await
    }

    async fn insert_authorization_code(&self, code: &AuthorizationCode) -> Result<(), StoreError> {
        self.count("insert_authorization_code");
        self.inner.insert_authorization_code(code).await
    }

    async fn find_authorization_code(
        &self,
        code_hash: &CredentialHash,
    ) -> Result<Option<AuthorizationCode>, StoreError> {
        self.count("find_authorization_code");
        self.inner.find_authorization_code(code_hash).await
    }

    async fn consume_authorization_code(
        &self,
        code_hash: &CredentialHash,
        client_id: &ClientId,
        now: UnixTime,
    ) -> Result<CodeConsumption, StoreError> {
        self.count("consume_authorization_code");
        self.inner
            .consume_authorization_code(code_hash, client_id, now)
            .await
    }

    async fn insert_refresh_family(
        &self,
        family: &RefreshFamily,
        first_token: &CredentialHash,
    ) -> Result<(), StoreError> {
        self.count("insert_refresh_family");
        self.inner.insert_refresh_family(family, first_token).await
    }

    async fn find_refresh_token(
        &self,
        token_hash: &CredentialHash,
    ) -> Result<Option<(RefreshFamily, i64)>, StoreError> {
        self.count("find_refresh_token");
        self.inner.find_refresh_token(token_hash).await
    }

    async fn find_refresh_grant(
        &self,
        token_hash: &CredentialHash,
    ) -> Result<Option<RefreshGrant>, StoreError> {
        self.count("find_refresh_grant");
        self.inner.find_refresh_grant(token_hash).await
    }

    async fn find_refresh_family(
        &self,
        family_id: &str,
    ) -> Result<Option<RefreshFamily>, StoreError> {
        self.count("find_refresh_family");
        self.inner.find_refresh_family(family_id).await
    }

    async fn rotate_refresh(&self, rotation: &Rotation) -> Result<RotationOutcome, StoreError> {
        self.count("rotate_refresh");
        self.inner.rotate_refresh(rotation).await
    }

    async fn reissue_successor(
        &self,
        family_id: &str,
        generation: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        self.count("reissue_successor");
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
        self.count("end_refresh_family");
        self.inner.end_refresh_family(family_id, now, reason).await
    }

    async fn use_dpop_proof(
        &self,
        jkt: &str,
        jti_hash: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.count("use_dpop_proof");
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
        self.count("insert_revoked_access_token");
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
        self.count("list_revocations");
        self.inner.list_revocations(after_seq, since, limit).await
    }

    async fn latest_revocation_seq(&self) -> Result<i64, StoreError> {
        self.count("latest_revocation_seq");
        self.inner.latest_revocation_seq().await
    }

    async fn claim_backchannel_deliveries(
        &self,
        now: UnixTime,
        lease: i64,
        limit: u32,
    ) -> Result<Vec<BackchannelDelivery>, StoreError> {
        self.count("claim_backchannel_deliveries");
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
        self.count("record_backchannel_attempt");
        self.inner
            .record_backchannel_attempt(id, now, outcome)
            .await
    }

    async fn list_undelivered_backchannel(&self) -> Result<Vec<BackchannelDelivery>, StoreError> {
        self.count("list_undelivered_backchannel");
        self.inner.list_undelivered_backchannel().await
    }

    async fn insert_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.count("insert_audit_event");
        self.inner.insert_audit_event(event).await
    }

    async fn list_audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        self.count("list_audit_events");
        self.inner.list_audit_events(filter).await
    }

    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        self.count("is_access_token_revoked");
        self.inner.is_access_token_revoked(jti).await
    }

    async fn begin_login_attempt(
        &self,
        keys: &[ThrottleKey],
        now: UnixTime,
        policy: &ThrottlePolicy,
    ) -> Result<LoginAttempt, StoreError> {
        self.count("begin_login_attempt");
        self.inner.begin_login_attempt(keys, now, policy).await
    }

    async fn record_login_success(
        &self,
        keys: &[ThrottleKey],
        aggregated_into: Option<usize>,
    ) -> Result<(), StoreError> {
        self.count("record_login_success");
        self.inner.record_login_success(keys, aggregated_into).await
    }

    async fn clear_login_counters(&self, username: &str) -> Result<u64, StoreError> {
        self.count("clear_login_counters");
        self.inner.clear_login_counters(username).await
    }

    async fn claim_job(
        &self,
        name: &str,
        holder: &str,
        now: UnixTime,
        lease: i64,
    ) -> Result<bool, StoreError> {
        self.count("claim_job");
        self.inner.claim_job(name, holder, now, lease).await
    }

    async fn list_expired_sessions(
        &self,
        idle_since: UnixTime,
        absolute_since: UnixTime,
        limit: u32,
    ) -> Result<Vec<Session>, StoreError> {
        self.count("list_expired_sessions");
        self.inner
            .list_expired_sessions(idle_since, absolute_since, limit)
            .await
    }

    async fn prune(&self, what: Prunable, before: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.count("prune");
        self.inner.prune(what, before, limit).await
    }

    async fn prune_login_counters(
        &self,
        before: UnixTime,
        limit: u32,
    ) -> Result<(u64, Vec<ThrottleReport>), StoreError> {
        self.count("prune_login_counters");
        self.inner.prune_login_counters(before, limit).await
    }

    async fn row_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.count("row_counts");
        self.inner.row_counts().await
    }

    async fn listen(
        &self,
        listener: std::sync::Arc<dyn ChangeListener>,
    ) -> Result<bool, StoreError> {
        self.count("listen");
        self.inner.listen(listener).await
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        self.count("check_ready");
        self.inner.check_ready().await
    }
}
