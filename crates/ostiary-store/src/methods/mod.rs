//! Every [`Store`](ostiary_core::Store) method that both backends run the same way, written
//! once, generic over [`Backend`](crate::sql::Backend): the transaction, the statements in
//! order (named fields of [`Statements`](crate::sql::Statements), whose text is per
//! backend), the decisions between them and the rows read back. `SqliteStore` and
//! `PostgresStore` implement the trait by calling these; what they do their own way (the
//! refresh grant's hot path, the feed's notifications, opening and the schema check) is in
//! their own files.
//!
//! A new store method is written here once, plus its line in [`impl_store!`] and one
//! statement in each backend's `Statements`.

pub(crate) mod accounts;
pub(crate) mod backchannel;
pub(crate) mod grants;
pub(crate) mod keys;
pub(crate) mod retention;
pub(crate) mod sessions;
pub(crate) mod throttle;

/// What the `impl Store` of each backend names (the types of the trait's signatures).
pub(crate) mod prelude {
    pub(crate) use ostiary_core::audit::{AuditEvent, AuditFilter};
    pub(crate) use ostiary_core::client::{Client, ClientId};
    pub(crate) use ostiary_core::clock::UnixTime;
    pub(crate) use ostiary_core::code::{AuthorizationCode, CodeConsumption};
    pub(crate) use ostiary_core::keys::StoredKey;
    pub(crate) use ostiary_core::refresh::RefreshFamily;
    pub(crate) use ostiary_core::retention::Prunable;
    pub(crate) use ostiary_core::secret::CredentialHash;
    pub(crate) use ostiary_core::session::{ClientPolicy, EndReason, Session};
    pub(crate) use ostiary_core::store::{
        BackchannelDelivery, DeliveryOutcome, LoginAttempt, RevocationEntry, SessionAdmission,
        SessionLimit, Store, StoreError, ThrottleKey, ThrottleReport,
    };
    pub(crate) use ostiary_core::throttle::ThrottlePolicy;
    pub(crate) use ostiary_core::user::{PasswordHashString, User, Username};
}

/// `impl Store for $store`: every method that is written once here, called with the store as
/// its [`Backend`](crate::sql::Backend), and the methods given after the `;`, which that
/// backend does its own way.
macro_rules! impl_store {
    ($store:ty; $($own:tt)*) => {
        const _: () = {
            #[allow(unused_imports)]
            use $crate::methods::prelude::*;
            use $crate::methods;

            #[async_trait::async_trait]
            impl Store for $store {
            #[tracing::instrument(skip_all)]
            async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
                methods::accounts::insert_user(self, user).await
            }

            #[tracing::instrument(skip_all)]
            async fn find_user(&self, id: &str) -> Result<Option<User>, StoreError> {
                methods::accounts::find_user(self, id).await
            }

            #[tracing::instrument(skip_all)]
            async fn find_user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
                methods::accounts::find_user_by_username(self, username).await
            }

            #[tracing::instrument(skip_all)]
            async fn list_users(&self) -> Result<Vec<User>, StoreError> {
                methods::accounts::list_users(self).await
            }

            #[tracing::instrument(skip_all)]
            async fn update_user_disabled(
                &self,
                username: &Username,
                disabled: bool,
            ) -> Result<bool, StoreError> {
                methods::accounts::update_user_disabled(self, username, disabled).await
            }

            #[tracing::instrument(skip_all)]
            async fn update_user_password(
                &self,
                user_id: &str,
                hash: &PasswordHashString,
            ) -> Result<bool, StoreError> {
                methods::accounts::update_user_password(self, user_id, hash).await
            }

            #[tracing::instrument(skip_all)]
            async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
                methods::accounts::insert_client(self, client).await
            }

            #[tracing::instrument(skip_all)]
            async fn find_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
                methods::accounts::find_client(self, id).await
            }

            #[tracing::instrument(skip_all)]
            async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
                methods::accounts::list_clients(self).await
            }

            #[tracing::instrument(skip_all, fields(client_id = %id))]
            async fn update_client_policy(
                &self,
                id: &ClientId,
                policy: &ClientPolicy,
            ) -> Result<bool, StoreError> {
                methods::accounts::update_client_policy(self, id, policy).await
            }

            #[tracing::instrument(skip_all)]
            async fn list_signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
                methods::keys::list_signing_keys(self).await
            }

            #[tracing::instrument(skip_all)]
            async fn insert_signing_key(&self, key: &StoredKey) -> Result<(), StoreError> {
                methods::keys::insert_signing_key(self, key).await
            }

            #[tracing::instrument(skip_all, fields(kid = %key.kid))]
            async fn insert_next_signing_key(
                &self,
                key: &StoredKey,
                after: UnixTime,
            ) -> Result<bool, StoreError> {
                methods::keys::insert_next_signing_key(self, key, after).await
            }

            #[tracing::instrument(skip_all)]
            async fn change_signing_keys(
                &self,
                keys: &[StoredKey],
                withdraw: &[String],
                now: UnixTime,
                audit: &[AuditEvent],
            ) -> Result<(), StoreError> {
                methods::keys::change_signing_keys(self, keys, withdraw, now, audit).await
            }

            #[tracing::instrument(skip_all, fields(kid = %kid))]
            async fn delete_signing_key(&self, kid: &str) -> Result<bool, StoreError> {
                methods::keys::delete_signing_key(self, kid).await
            }

            #[tracing::instrument(skip_all, fields(sid = %session.sid))]
            async fn insert_session(
                &self,
                session: &Session,
                limit: SessionLimit,
                audit: &AuditEvent,
            ) -> Result<SessionAdmission, StoreError> {
                methods::sessions::insert_session(self, session, limit, audit).await
            }

            #[tracing::instrument(skip_all, fields(sid = %sid, client_id = %client_id))]
            async fn admit_client_session(
                &self,
                sid: &str,
                user_id: &str,
                client_id: &ClientId,
                now: UnixTime,
                limit: SessionLimit,
            ) -> Result<SessionAdmission, StoreError> {
                methods::sessions::admit_client_session(self, sid, user_id, client_id, now, limit).await
            }

            #[tracing::instrument(skip_all, fields(sid = %sid))]
            async fn find_session(&self, sid: &str) -> Result<Option<Session>, StoreError> {
                methods::sessions::find_session(self, sid).await
            }

            #[tracing::instrument(skip_all)]
            async fn find_session_by_cookie(
                &self,
                cookie_hash: &CredentialHash,
            ) -> Result<Option<Session>, StoreError> {
                methods::sessions::find_session_by_cookie(self, cookie_hash).await
            }

            #[tracing::instrument(skip_all, fields(sid = %sid))]
            async fn touch_session(&self, sid: &str, now: UnixTime) -> Result<(), StoreError> {
                methods::sessions::touch_session(self, sid, now).await
            }

            #[tracing::instrument(skip_all, fields(sid = %sid, reason = reason.as_str()))]
            async fn end_session(
                &self,
                sid: &str,
                now: UnixTime,
                reason: EndReason,
                cause: Option<&AuditEvent>,
            ) -> Result<bool, StoreError> {
                methods::sessions::end_session(self, sid, now, reason, cause).await
            }

            #[tracing::instrument(skip_all, fields(user_id = %user_id, reason = reason.as_str()))]
            async fn end_sessions_of_user(
                &self,
                user_id: &str,
                now: UnixTime,
                reason: EndReason,
            ) -> Result<Vec<String>, StoreError> {
                methods::sessions::end_sessions_of_user(self, user_id, now, reason).await
            }

            #[tracing::instrument(skip_all)]
            async fn list_active_sessions(
                &self,
                user_id: Option<&str>,
            ) -> Result<Vec<(Session, Vec<String>)>, StoreError> {
                methods::sessions::list_active_sessions(self, user_id).await
            }

            #[tracing::instrument(skip_all)]
            async fn insert_authorization_code(&self, code: &AuthorizationCode) -> Result<(), StoreError> {
                methods::grants::insert_authorization_code(self, code).await
            }

            #[tracing::instrument(skip_all)]
            async fn find_authorization_code(
                &self,
                code_hash: &CredentialHash,
            ) -> Result<Option<AuthorizationCode>, StoreError> {
                methods::grants::find_authorization_code(self, code_hash).await
            }

            #[tracing::instrument(skip_all)]
            async fn consume_authorization_code(
                &self,
                code_hash: &CredentialHash,
                client_id: &ClientId,
                now: UnixTime,
            ) -> Result<CodeConsumption, StoreError> {
                methods::grants::consume_authorization_code(self, code_hash, client_id, now).await
            }

            #[tracing::instrument(skip_all, fields(family = %family.id))]
            async fn insert_refresh_family(
                &self,
                family: &RefreshFamily,
                first_token: &CredentialHash,
            ) -> Result<(), StoreError> {
                methods::grants::insert_refresh_family(self, family, first_token).await
            }

            #[tracing::instrument(skip_all)]
            async fn find_refresh_token(
                &self,
                token_hash: &CredentialHash,
            ) -> Result<Option<(RefreshFamily, i64)>, StoreError> {
                methods::grants::find_refresh_token(self, token_hash).await
            }

            #[tracing::instrument(skip_all, fields(family = %family_id))]
            async fn find_refresh_family(
                &self,
                family_id: &str,
            ) -> Result<Option<RefreshFamily>, StoreError> {
                methods::grants::find_refresh_family(self, family_id).await
            }

            #[tracing::instrument(skip_all, fields(family = %family_id, generation))]
            async fn reissue_successor(
                &self,
                family_id: &str,
                generation: i64,
                audit: &AuditEvent,
            ) -> Result<bool, StoreError> {
                methods::grants::reissue_successor(self, family_id, generation, audit).await
            }

            #[tracing::instrument(skip_all, fields(family = %family_id))]
            async fn end_refresh_family(
                &self,
                family_id: &str,
                now: UnixTime,
                reason: EndReason,
            ) -> Result<bool, StoreError> {
                methods::grants::end_refresh_family(self, family_id, now, reason).await
            }

            #[tracing::instrument(skip_all)]
            async fn insert_revoked_access_token(
                &self,
                jti: &str,
                expires_at: UnixTime,
                now: UnixTime,
            ) -> Result<(), StoreError> {
                methods::grants::insert_revoked_access_token(self, jti, expires_at, now).await
            }

            #[tracing::instrument(skip_all)]
            async fn list_revocations(
                &self,
                after_seq: i64,
                since: UnixTime,
                limit: u32,
            ) -> Result<Vec<RevocationEntry>, StoreError> {
                methods::grants::list_revocations(self, after_seq, since, limit).await
            }

            #[tracing::instrument(skip_all)]
            async fn claim_backchannel_deliveries(
                &self,
                now: UnixTime,
                lease: i64,
                limit: u32,
            ) -> Result<Vec<BackchannelDelivery>, StoreError> {
                methods::backchannel::claim_backchannel_deliveries(self, now, lease, limit).await
            }

            #[tracing::instrument(skip_all, fields(id))]
            async fn record_backchannel_attempt(
                &self,
                id: i64,
                now: UnixTime,
                outcome: &DeliveryOutcome,
            ) -> Result<(), StoreError> {
                methods::backchannel::record_backchannel_attempt(self, id, now, outcome).await
            }

            #[tracing::instrument(skip_all)]
            async fn list_undelivered_backchannel(&self) -> Result<Vec<BackchannelDelivery>, StoreError> {
                methods::backchannel::list_undelivered_backchannel(self).await
            }

            #[tracing::instrument(skip_all, fields(kind = event.kind.as_str()))]
            async fn insert_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
                methods::accounts::insert_audit_event(self, event).await
            }

            #[tracing::instrument(skip_all)]
            async fn list_audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
                methods::accounts::list_audit_events(self, filter).await
            }

            #[tracing::instrument(skip_all)]
            async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
                methods::grants::is_access_token_revoked(self, jti).await
            }

            #[tracing::instrument(skip_all)]
            async fn begin_login_attempt(
                &self,
                keys: &[ThrottleKey],
                now: UnixTime,
                policy: &ThrottlePolicy,
            ) -> Result<LoginAttempt, StoreError> {
                methods::throttle::begin_login_attempt(self, keys, now, policy).await
            }

            #[tracing::instrument(skip_all)]
            async fn record_login_success(
                &self,
                keys: &[ThrottleKey],
                aggregated_into: Option<usize>,
            ) -> Result<(), StoreError> {
                methods::throttle::record_login_success(self, keys, aggregated_into).await
            }

            #[tracing::instrument(skip_all)]
            async fn clear_login_counters(&self, username: &str) -> Result<u64, StoreError> {
                methods::throttle::clear_login_counters(self, username).await
            }

            #[tracing::instrument(skip_all, fields(job = name))]
            async fn claim_job(
                &self,
                name: &str,
                holder: &str,
                now: UnixTime,
                lease: i64,
            ) -> Result<bool, StoreError> {
                methods::retention::claim_job(self, name, holder, now, lease).await
            }

            #[tracing::instrument(skip_all)]
            async fn list_expired_sessions(
                &self,
                idle_since: UnixTime,
                absolute_since: UnixTime,
                limit: u32,
            ) -> Result<Vec<Session>, StoreError> {
                methods::sessions::list_expired_sessions(self, idle_since, absolute_since, limit).await
            }

            #[tracing::instrument(skip_all, fields(what = what.as_str()))]
            async fn prune(&self, what: Prunable, before: UnixTime, limit: u32) -> Result<u64, StoreError> {
                methods::retention::prune(self, what, before, limit).await
            }

            #[tracing::instrument(skip_all)]
            async fn prune_login_counters(
                &self,
                before: UnixTime,
                limit: u32,
            ) -> Result<(u64, Vec<ThrottleReport>), StoreError> {
                methods::retention::prune_login_counters(self, before, limit).await
            }

            #[tracing::instrument(skip_all)]
            async fn row_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
                methods::retention::row_counts(self).await
            }

                $($own)*
            }
        };
    };
}
pub(crate) use impl_store;
