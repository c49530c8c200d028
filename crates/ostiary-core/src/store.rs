//! The storage the use cases need. Implementations live in `ostiary-store`; each method names
//! its intent, and whatever must be atomic is one method (one transaction) here.

use async_trait::async_trait;

use crate::audit::{AuditEvent, AuditFilter};
use crate::client::{Client, ClientId};
use crate::clock::UnixTime;
use crate::code::{AuthorizationCode, CodeConsumption};
use crate::keys::StoredKey;
use crate::refresh::RefreshFamily;
use crate::secret::CredentialHash;
use crate::session::{ClientPolicy, EndReason, Session};
use crate::user::{PasswordHashString, User, Username};

/// Hears of changes other processes make to the database (see [`Store::listen`]). Called on
/// the store's listening task: implementations only note the change and return.
pub trait ChangeListener: Send + Sync {
    /// Something was published on the revocation feed.
    fn revocations_published(&self);
    /// The registration of the client with this id changed (its policy, or it was added).
    fn client_changed(&self, client_id: &str);
    /// Notifications may have been missed (the connection they arrive on was lost): whatever
    /// was learnt from the database may be stale, and is to be read again.
    fn notifications_lost(&self);
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique value (username, client id, …) already exists.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The database could not be reached or refused the operation. The text is for logs only.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A stored row could not be read back (schema drift or manual edits).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// Text that no backend can keep (it contains NUL); names the field. Input at fault, not
    /// the database: callers answer it as a bad request.
    #[error("the {0} contains a character that cannot be stored")]
    InvalidInput(&'static str),
}

/// An entry of the revocation feed: a session that ended (`sid`), an access token that was
/// revoked (`jti`), or a signing key that was withdrawn (`kid`: tokens it signed are not to be
/// trusted any more, whatever their `exp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEntry {
    /// Position in the feed: strictly increasing.
    pub seq: i64,
    /// The ended session, if this entry is about a session.
    pub sid: Option<String>,
    /// The revoked access token, if this entry is about one token.
    pub jti: Option<String>,
    /// The withdrawn signing key, if this entry is about a key.
    pub kid: Option<String>,
    /// When (Unix seconds).
    pub revoked_at: UnixTime,
    /// Why (an [`EndReason::as_str`], or `access_token_revoked`).
    pub reason: String,
}

/// The session limit a new session is admitted under. A session counts as active when it has
/// not ended, was used after `idle_since` and created after `absolute_since` (Unix seconds).
/// Evicted sessions are audited (`session_ended`, then `session_evicted` naming the session
/// admitted) in the same transaction, with `max` in the details.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimit {
    /// Most active sessions per user; 0 means no limit.
    pub max: u32,
    /// End the oldest sessions to make room (`true`) or refuse the new one (`false`).
    pub evict_oldest: bool,
    /// Sessions last used at or before this are idle-expired and do not count.
    pub idle_since: UnixTime,
    /// Sessions created at or before this are past their absolute lifetime and do not count.
    pub absolute_since: UnixTime,
}

/// Whether a new session was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionAdmission {
    /// Stored; these older sessions were ended to make room.
    Admitted {
        /// The `sid`s of the evicted sessions.
        evicted: Vec<String>,
    },
    /// Not stored: the user is at the limit and the policy refuses new sessions.
    Refused,
}

/// A back-channel logout owed to a client (serialized as the CLI and admin API show it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackchannelDelivery {
    /// Identifier.
    pub id: i64,
    /// The client to notify.
    pub client_id: String,
    /// The session that ended.
    pub sid: String,
    /// The client's `backchannel_logout_uri`.
    pub uri: String,
    /// Attempts so far.
    pub attempts: i64,
    /// When the next attempt is due (Unix seconds).
    pub next_attempt_at: UnixTime,
    /// When it was delivered, if it was.
    pub delivered_at: Option<UnixTime>,
    /// When it was given up, if it was.
    pub failed_at: Option<UnixTime>,
    /// The last error, for operators.
    pub last_error: Option<String>,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The client answered 2xx.
    Delivered,
    /// It failed; try again at `retry_at`.
    Retry {
        /// When (Unix seconds).
        retry_at: UnixTime,
        /// Why it failed.
        error: String,
    },
    /// It failed for the last time.
    GaveUp {
        /// Why it failed.
        error: String,
    },
}

/// One failed-login counter of an attempt (see [`crate::throttle`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleKey {
    /// `pair:NAME|ADDRESS`, `user:NAME` or `ip:ADDRESS` (names lower-cased), at most 140
    /// characters.
    pub key: String,
    /// The username the counter is about (to clear them, `ostiary user unlock`); `None` for an
    /// address's counter.
    pub username: Option<String>,
    /// Which kind of counter it is; decides what passing its limit does.
    pub kind: crate::throttle::CounterKind,
}

/// A failed-login counter as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginCounters {
    /// Failures counted (attempts that went ahead, until a success took one back).
    pub failures: u32,
    /// When the last of them was counted (Unix seconds).
    pub last_failure_at: UnixTime,
}

/// Attempts counted into a counter's aggregate since its last report, to be audited as one
/// `login_throttled` event (see [`crate::throttle`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleReport {
    /// The counter's key.
    pub key: String,
    /// The counter's kind.
    pub kind: crate::throttle::CounterKind,
    /// Attempts refused or failed since the last report.
    pub attempts: u64,
    /// When the first of them came (Unix seconds).
    pub since: UnixTime,
}

/// Whether a login attempt may go ahead, decided by [`crate::throttle::evaluate`] inside
/// [`Store::begin_login_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAttempt {
    /// What the throttle decided.
    pub evaluation: crate::throttle::Evaluation,
    /// Reports due now (aggregates' counts, now reset), to be audited.
    pub reports: Vec<ThrottleReport>,
}

/// The `jti` and expiry of an access token about to be minted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedAccessToken {
    /// The token's `jti`.
    pub jti: String,
    /// Its `exp` (Unix seconds).
    pub expires_at: UnixTime,
}

impl IssuedAccessToken {
    /// A fresh `jti` for a token expiring at `expires_at`.
    pub fn new(expires_at: UnixTime) -> Self {
        Self {
            jti: crate::secret::random_id(),
            expires_at,
        }
    }
}

/// A rotation to apply only if the family is still at `expected_generation` (compare-and-swap).
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The family to rotate.
    pub family_id: String,
    /// The generation presented; the rotation applies only if it is still current.
    pub expected_generation: i64,
    /// Hash of the new current token (generation `expected_generation + 1`).
    pub new_token_hash: CredentialHash,
    /// The new token sealed under the presented one (see [`crate::refresh::seal_successor`]).
    pub sealed_successor: Vec<u8>,
    /// Rotation time; also the session's new `last_used_at`.
    pub now: UnixTime,
    /// IP of the request that rotated.
    pub ip: Option<String>,
    /// `User-Agent` of the request that rotated (at most 256 characters).
    pub user_agent: Option<String>,
    /// The `refresh_rotated` event, appended in the same transaction if the rotation applies.
    pub audit: AuditEvent,
    /// The DPoP proof the request came with, if it has not been recorded yet: recorded in the
    /// same transaction ([`Store::use_dpop_proof`]'s replay cache), and the rotation applies
    /// only if this is its first use.
    pub dpop_proof: Option<DpopProofRecord>,
}

/// A DPoP proof's entry in the store's replay cache (RFC 9449 §11.1; see
/// [`Store::use_dpop_proof`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopProofRecord {
    /// The RFC 7638 thumbprint of the proof's key (base64url).
    pub jkt: String,
    /// The base64url SHA-256 of the proof's `jti`.
    pub jti_hash: String,
    /// The end of the proof's `iat` window: until then a second use is a replay.
    pub expires_at: UnixTime,
}

/// What [`Store::rotate_refresh`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationOutcome {
    /// This call rotated the family (and recorded its DPoP proof, if it carried one).
    Rotated,
    /// The family had moved on or ended: nothing of the rotation happened.
    /// `proof_recorded`: whether the rotation's DPoP proof was recorded all the same (then it
    /// is used, and must not be presented again); `false` without a proof.
    Lost {
        /// The proof was recorded although the rotation did not apply.
        proof_recorded: bool,
    },
    /// The rotation's DPoP proof was used before within its window: a replay. Nothing
    /// happened.
    ProofReplayed,
}

impl RotationOutcome {
    /// Whether the rotation applied ([`RotationOutcome::Rotated`]).
    pub fn rotated(self) -> bool {
        self == Self::Rotated
    }
}

/// What the refresh grant reads before it decides ([`Store::find_refresh_grant`]).
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    /// The family the presented token belongs to.
    pub family: RefreshFamily,
    /// The presented token's generation: the family's current one, or an older one (a replay
    /// or a reuse, decided by [`crate::refresh::decide`]).
    pub generation: i64,
    /// The family's session.
    pub session: Session,
    /// The session's user.
    pub user: User,
}

/// Everything the domain stores.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Adds a user; [`StoreError::Conflict`] if the username is taken.
    async fn insert_user(&self, user: &User) -> Result<(), StoreError>;
    /// The user with this id.
    async fn find_user(&self, id: &str) -> Result<Option<User>, StoreError>;
    /// The user with this username.
    async fn find_user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError>;
    /// All users, by username.
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// Replaces a user's password hash; `false` if there is no such user.
    async fn update_user_password(
        &self,
        user_id: &str,
        hash: &PasswordHashString,
    ) -> Result<bool, StoreError>;
    /// Sets the disabled flag; `false` if there is no such user.
    async fn update_user_disabled(
        &self,
        username: &Username,
        disabled: bool,
    ) -> Result<bool, StoreError>;

    /// Registers a client; [`StoreError::Conflict`] if the id is taken.
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError>;
    /// The client with this id.
    async fn find_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError>;
    /// All clients, by id.
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError>;
    /// Replaces a client's policy overrides; `false` if there is no such client.
    async fn update_client_policy(
        &self,
        id: &ClientId,
        policy: &ClientPolicy,
    ) -> Result<bool, StoreError>;

    /// All signing keys.
    async fn list_signing_keys(&self) -> Result<Vec<StoredKey>, StoreError>;
    /// Stores a new signing key.
    async fn insert_signing_key(&self, key: &StoredKey) -> Result<(), StoreError>;
    /// Stores `key` only if no key of its algorithm activates after `after`, in one
    /// transaction, so that instances racing to do the same store one key: with `after` =
    /// now, only if no next key is waiting to sign (a rotation); with `UnixTime::MIN`, only if
    /// the algorithm has no key at all (the first start). `true` if stored.
    async fn insert_next_signing_key(
        &self,
        key: &StoredKey,
        after: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Changes the signing keys in one transaction (an emergency rotation, or sealing keys
    /// stored in the clear): `keys` are stored, replacing the private key of a stored key with
    /// the same `kid` (its times stay); the keys `withdraw` names are deleted and each published
    /// on the revocation feed as a withdrawn `kid` (reason `signing_key_withdrawn`); `audit` is
    /// appended.
    async fn change_signing_keys(
        &self,
        keys: &[StoredKey],
        withdraw: &[String],
        now: UnixTime,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError>;
    /// Deletes a signing key (past its retention); `false` if it was already gone.
    async fn delete_signing_key(&self, kid: &str) -> Result<bool, StoreError>;

    /// Stores a new session, within the user's session limit, in one transaction: with
    /// `limit.max` active sessions already (0: no limit), either the oldest are ended to make
    /// room (`evict_oldest`; ended with [`EndReason::PolicyEviction`] and published like any
    /// ending) or nothing is stored and [`SessionAdmission::Refused`] is returned.
    ///
    /// `audit` (the login's event) is appended in the same transaction when admitted.
    async fn insert_session(
        &self,
        session: &Session,
        limit: SessionLimit,
        audit: &AuditEvent,
    ) -> Result<SessionAdmission, StoreError>;
    /// Records that `client_id` obtained tokens in session `sid`, within the client's limit on
    /// sessions per user, in one transaction: with `limit.max` other active sessions of the
    /// user already holding tokens of this client (0: no limit), either the oldest of them are
    /// ended ([`EndReason::PolicyEviction`], published like any ending) or nothing is recorded
    /// and [`SessionAdmission::Refused`] is returned. A session already recorded for the client
    /// is admitted again without counting.
    async fn admit_client_session(
        &self,
        sid: &str,
        user_id: &str,
        client_id: &ClientId,
        now: UnixTime,
        limit: SessionLimit,
    ) -> Result<SessionAdmission, StoreError>;
    /// The session with this `sid`, ended or not.
    async fn find_session(&self, sid: &str) -> Result<Option<Session>, StoreError>;
    /// The session whose browser cookie hashes to `cookie_hash`, ended or not.
    async fn find_session_by_cookie(
        &self,
        cookie_hash: &CredentialHash,
    ) -> Result<Option<Session>, StoreError>;
    /// Records use of the session at `now` (for the idle timeout).
    async fn touch_session(&self, sid: &str, now: UnixTime) -> Result<(), StoreError>;
    /// Ends the session and every refresh family in it, publishes the `sid` on the revocation
    /// feed, queues back-channel logouts and appends the `session_ended` audit event, in one
    /// transaction. `cause`, the event that explains the ending (such as a detected reuse with
    /// its evidence), is appended first in that transaction if given, even when the session had
    /// already ended. `false` if it had already ended (the first reason is kept; nothing is
    /// published again).
    ///
    /// Every way a session ends goes through this transaction (also within
    /// [`Store::end_sessions_of_user`], [`Store::insert_session`] and
    /// [`Store::admit_client_session`]), so no ending escapes the feed or the audit log.
    async fn end_session(
        &self,
        sid: &str,
        now: UnixTime,
        reason: EndReason,
        cause: Option<&AuditEvent>,
    ) -> Result<bool, StoreError>;
    /// Ends every active session of a user (and their families), publishing and auditing each
    /// as [`Store::end_session`] does; returns them.
    async fn end_sessions_of_user(
        &self,
        user_id: &str,
        now: UnixTime,
        reason: EndReason,
    ) -> Result<Vec<String>, StoreError>;

    /// The active (not ended) sessions, of one user or of everyone, newest first, each with
    /// the ids of the clients that hold refresh tokens in it.
    async fn list_active_sessions(
        &self,
        user_id: Option<&str>,
    ) -> Result<Vec<(Session, Vec<String>)>, StoreError>;

    /// Stores an authorization code (by hash).
    async fn insert_authorization_code(&self, code: &AuthorizationCode) -> Result<(), StoreError>;
    /// The authorization code with this hash, used or not.
    async fn find_authorization_code(
        &self,
        code_hash: &CredentialHash,
    ) -> Result<Option<AuthorizationCode>, StoreError>;
    /// Marks the code used by `client_id`, atomically: exactly one caller ever gets
    /// [`CodeConsumption::First`]. A code of another client is left as it is
    /// ([`CodeConsumption::OtherClient`]).
    async fn consume_authorization_code(
        &self,
        code_hash: &CredentialHash,
        client_id: &ClientId,
        now: UnixTime,
    ) -> Result<CodeConsumption, StoreError>;

    /// Stores a new refresh family with its first token (generation 0).
    async fn insert_refresh_family(
        &self,
        family: &RefreshFamily,
        first_token: &CredentialHash,
    ) -> Result<(), StoreError>;
    /// The family and generation of a refresh token, by the token's hash.
    async fn find_refresh_token(
        &self,
        token_hash: &CredentialHash,
    ) -> Result<Option<(RefreshFamily, i64)>, StoreError>;
    /// Everything the refresh grant reads, in one call (one statement): the family and
    /// generation of the refresh token with this hash, the family's session and the session's
    /// user. `None` if no token has this hash.
    async fn find_refresh_grant(
        &self,
        token_hash: &CredentialHash,
    ) -> Result<Option<RefreshGrant>, StoreError>;
    /// The family with this id.
    async fn find_refresh_family(
        &self,
        family_id: &str,
    ) -> Result<Option<RefreshFamily>, StoreError>;
    /// Applies a rotation if and only if the family is still at the expected generation and
    /// not ended, in one transaction with recording the new token and touching the session.
    /// The presented token's reissued mark moves with it (`previous_reissued` becomes what
    /// `current_reissued` was; the new current token is not reissued). With
    /// [`Rotation::dpop_proof`], the proof is recorded in the same transaction and the
    /// rotation applies only if it was its first use. [`RotationOutcome::Rotated`] if this
    /// call won.
    async fn rotate_refresh(&self, rotation: &Rotation) -> Result<RotationOutcome, StoreError>;
    /// Marks the current token of a family as reissued (handed out again, see
    /// [`crate::refresh`]) if and only if the family is still at `generation` and not ended,
    /// in one transaction with appending `audit` (the recovery or replay it records). `false`
    /// if the family moved on or ended meanwhile: the caller decides again.
    async fn reissue_successor(
        &self,
        family_id: &str,
        generation: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError>;
    /// Ends one refresh family (its client's own limits ran out), leaving the session and its
    /// other families alone. Nothing is published: the session goes on, and the family's access
    /// tokens expire on their own. Unless the client holds another live family in the session,
    /// the session stops counting towards the client's session limit. `false` if it had
    /// already ended.
    async fn end_refresh_family(
        &self,
        family_id: &str,
        now: UnixTime,
        reason: EndReason,
    ) -> Result<bool, StoreError>;
    /// Records that a DPoP proof (RFC 9449) by the key `jkt` with this hash of its `jti` was
    /// accepted, until `expires_at` (the end of its `iat` window): `true` the first time,
    /// `false` for a replay, across every instance sharing the store (§11.1). A record that
    /// expired before `now` counts as absent. Pruned with the access-token records.
    async fn use_dpop_proof(
        &self,
        jkt: &str,
        jti_hash: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError>;

    /// Records a revoked access token until it expires, and publishes its `jti` (revoked at
    /// `now`) on the revocation feed.
    async fn insert_revoked_access_token(
        &self,
        jti: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), StoreError>;
    /// The revocation feed after `after_seq`, skipping entries revoked before `since`, at most
    /// `limit` entries, in order.
    async fn list_revocations(
        &self,
        after_seq: i64,
        since: UnixTime,
        limit: u32,
    ) -> Result<Vec<RevocationEntry>, StoreError>;
    /// The highest `seq` the feed ever issued (pruned entries included); 0 if none.
    async fn latest_revocation_seq(&self) -> Result<i64, StoreError>;
    /// Claims up to `limit` due back-channel deliveries for `lease` seconds (so that another
    /// instance does not send them at the same time) and returns them.
    async fn claim_backchannel_deliveries(
        &self,
        now: UnixTime,
        lease: i64,
        limit: u32,
    ) -> Result<Vec<BackchannelDelivery>, StoreError>;
    /// Records the outcome of an attempt.
    async fn record_backchannel_attempt(
        &self,
        id: i64,
        now: UnixTime,
        outcome: &DeliveryOutcome,
    ) -> Result<(), StoreError>;
    /// Deliveries not yet delivered (pending or given up), oldest first.
    async fn list_undelivered_backchannel(&self) -> Result<Vec<BackchannelDelivery>, StoreError>;

    /// Appends an event to the audit log (there is no way to change or delete one).
    async fn insert_audit_event(&self, event: &AuditEvent) -> Result<(), StoreError>;
    /// Audit events matching `filter`, oldest first.
    async fn list_audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError>;

    /// Whether an access token was revoked.
    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, StoreError>;

    /// Starts a login attempt under the failed-login counters `keys`, in one transaction, so
    /// that parallel attempts on any instance sharing the database cannot all slip under a
    /// limit: reads the counters (one forgotten `policy.window` seconds after its last failure
    /// counts as none), decides with [`crate::throttle::evaluate`], and then either counts a
    /// refusal into the aggregate of the refusing counter, or counts the attempt as a failure
    /// on every counter (`failures + 1`, `last_failure_at = now`), before the password is
    /// checked, and into the aggregate the evaluation names, if any. An aggregate whose last
    /// report is [`crate::throttle::REPORT_INTERVAL`] seconds old or more is reported (and
    /// reset). Counters forgotten by now may be deleted.
    async fn begin_login_attempt(
        &self,
        keys: &[ThrottleKey],
        now: UnixTime,
        policy: &crate::throttle::ThrottlePolicy,
    ) -> Result<LoginAttempt, StoreError>;
    /// After a successful login started with `keys`: deletes the first counter (the username
    /// from this address) and takes one failure back from the others (and, from the one at
    /// `aggregated_into`, one attempt back from its aggregate).
    async fn record_login_success(
        &self,
        keys: &[ThrottleKey],
        aggregated_into: Option<usize>,
    ) -> Result<(), StoreError>;
    /// Deletes every failed-login counter of `username` (as [`crate::throttle::username_key`]
    /// writes it): from every address and in total. Returns how many there were.
    async fn clear_login_counters(&self, username: &str) -> Result<u64, StoreError>;

    /// Claims the job `name` for `holder` until `now + lease`, if nobody holds it at `now`
    /// (a claim of the same holder may be renewed). `true` if claimed: one process among those
    /// sharing the database does the job each period.
    async fn claim_job(
        &self,
        name: &str,
        holder: &str,
        now: UnixTime,
        lease: i64,
    ) -> Result<bool, StoreError>;
    /// Sessions not ended that were last used at or before `idle_since`, or created at or before
    /// `absolute_since`, oldest first, at most `limit` (for the retention job to end them).
    async fn list_expired_sessions(
        &self,
        idle_since: UnixTime,
        absolute_since: UnixTime,
        limit: u32,
    ) -> Result<Vec<Session>, StoreError>;
    /// Deletes up to `limit` records of one kind past their cut-off `before` (see
    /// [`crate::retention::Prunable`] for what each kind takes with it), in one transaction;
    /// returns how many main records went (sessions, codes, events, …).
    async fn prune(
        &self,
        what: crate::retention::Prunable,
        before: UnixTime,
        limit: u32,
    ) -> Result<u64, StoreError>;
    /// Deletes up to `limit` failed-login counters whose last failure was at or before
    /// `before` (forgotten), returning how many, and the reports of the aggregates they still
    /// held (to be audited).
    async fn prune_login_counters(
        &self,
        before: UnixTime,
        limit: u32,
    ) -> Result<(u64, Vec<ThrottleReport>), StoreError>;
    /// How many rows each table holds, by table name (for operators, and to show that
    /// retention keeps the database the same size).
    async fn row_counts(&self) -> Result<Vec<(String, u64)>, StoreError>;

    /// Tells `listener` of what other processes sharing this database change, until the store
    /// is dropped: every publication on the revocation feed (which is also when back-channel
    /// logouts are queued) and every change to a client's registration, by any process (this
    /// one too), after the change committed. Returns `false` when the backend has no way to
    /// hear other processes (SQLite): readers then rely on their periodic re-reads and caches
    /// on their time to live.
    async fn listen(
        &self,
        listener: std::sync::Arc<dyn ChangeListener>,
    ) -> Result<bool, StoreError>;

    /// Whether the database answers and its schema is the one this build expects (for
    /// readiness probes). The error says which.
    async fn check_ready(&self) -> Result<(), StoreError>;
}
