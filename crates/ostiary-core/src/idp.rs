//! The use cases: what the identity provider does, independent of how requests arrive.
//!
//! The HTTP adapter parses requests into the types of this crate, calls one method of [`Idp`],
//! and maps [`IdpError`] to the protocol's error format in one place.

use std::sync::Arc;

use crate::audit::{AuditEvent, AuditFilter, AuditKind, AuditObserver, NoObserver};
use crate::client::{Client, ClientId, ClientKind, RedirectUri, WebOrigin};
use crate::clock::{Clock, UnixTime};
use crate::code::{AuthorizationCode, CodeChallenge};
use crate::keys::{KeyEncryptionKey, KeyError, KeyPolicy, KeyRing, SigningAlgorithm};
use crate::scope::{self, Scope};
use crate::secret::{Credential, Password, random_id};
use crate::session::{
    ClientPolicy, EndReason, Session, SessionLimitAction, SessionPolicy, SessionState,
};
use crate::store::{
    BackchannelDelivery, DeliveryOutcome, IssuedAccessToken, RevocationEntry, SessionAdmission,
    SessionLimit, Store, StoreError,
};
use crate::throttle::{LoginThrottle, ThrottlePolicy};
use crate::token::{self, AccessTokenClaims, Audience, IdTokenClaims, OwnTokenError};
use serde_json::json;

use crate::user::{HashingError, PasswordHasher, User, Username};

/// Settings of the identity provider's behaviour. Lifetimes in seconds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdpConfig {
    /// The issuer identifier (`iss`): an `https` URL (or `http` for local development) with
    /// no query or fragment, compared exactly by clients. Default `http://127.0.0.1:8080`.
    pub issuer: String,
    /// Access-token lifetime. Default 300 (5 minutes).
    pub access_token_ttl: i64,
    /// ID-token lifetime. Default 300.
    pub id_token_ttl: i64,
    /// Authorization-code lifetime. Default 60.
    pub authorization_code_ttl: i64,
    /// Algorithm that signs access tokens: `ES256` (default), `EdDSA` or `RS256`.
    pub access_token_alg: SigningAlgorithm,
    /// Session lifetimes and the refresh grace window.
    pub session: SessionPolicy,
    /// Limits on failed logins.
    pub login_throttle: ThrottlePolicy,
    /// How long records are kept (see [`crate::retention`]).
    pub retention: crate::retention::RetentionPolicy,
    /// When signing keys rotate.
    pub keys: KeyPolicy,
    /// Seals signing keys at rest; required to open keys sealed with it. Never serialized.
    #[serde(skip)]
    pub key_encryption_key: Option<KeyEncryptionKey>,
}

impl Default for IdpConfig {
    fn default() -> Self {
        Self {
            issuer: "http://127.0.0.1:8080".into(),
            access_token_ttl: 300,
            id_token_ttl: 300,
            authorization_code_ttl: 60,
            access_token_alg: SigningAlgorithm::ES256,
            session: SessionPolicy::default(),
            login_throttle: ThrottlePolicy::default(),
            retention: crate::retention::RetentionPolicy::default(),
            keys: KeyPolicy::default(),
            key_encryption_key: None,
        }
    }
}

/// Algorithm ID tokens are signed with (OIDC Core §3.1.3.7: RS256 unless registered otherwise).
pub const ID_TOKEN_ALG: SigningAlgorithm = SigningAlgorithm::RS256;

/// What went wrong in a use case. The HTTP adapter maps each variant to a status and an OAuth
/// error code once; descriptions are safe to show to the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdpError {
    /// Client authentication failed or the client is unknown (RFC 6749 §5.2 `invalid_client`).
    #[error("client authentication failed")]
    InvalidClient,
    /// The grant (code or refresh token) is invalid, expired, revoked, or was issued to another
    /// client (`invalid_grant`). The reason is for logs, never for the response.
    #[error("the grant is invalid, expired or revoked")]
    InvalidGrant(&'static str),
    /// A malformed or missing parameter (`invalid_request`).
    #[error("{0}")]
    InvalidRequest(String),
    /// A scope that is unknown or not allowed for this client (`invalid_scope`).
    #[error("{0}")]
    InvalidScope(String),
    /// A resource indicator that is not allowed for this client (RFC 8707 `invalid_target`).
    #[error("{0}")]
    InvalidTarget(String),
    /// A `response_type` other than `code` (RFC 6749 §4.1.2.1 `unsupported_response_type`).
    #[error("only response_type=code is supported")]
    UnsupportedResponseType,
    /// Wrong username or password, or a disabled account (deliberately indistinguishable).
    /// `delay`: how long to hold the answer back (the failed-login throttle slows guessing
    /// from an address or against a username that has failed too often; zero otherwise).
    #[error("wrong username or password")]
    InvalidCredentials {
        /// How long the answer should wait.
        delay: std::time::Duration,
    },
    /// The user already has the most sessions allowed, and the policy refuses new logins.
    #[error("you are already signed in on {0} device(s), the most allowed; sign out there first")]
    SessionLimit(u32),
    /// The user already holds tokens of this client in the most sessions the client allows,
    /// and its policy refuses more (`invalid_grant` at the token endpoint).
    #[error(
        "you are already signed in to this application in {0} session(s), the most it allows; sign out of one first"
    )]
    ClientSessionLimit(u32),
    /// Too many failed logins for this username from this address; retry after the given
    /// seconds.
    #[error("too many failed sign-in attempts; try again in {}", wait_text(*.0))]
    TooManyAttempts(i64),
    /// An access token presented to the IdP itself is invalid, expired or revoked (RFC 6750
    /// `invalid_token`).
    #[error("the access token is invalid, expired or revoked")]
    InvalidToken,
    /// The access token lacks a scope the request needs (RFC 6750 `insufficient_scope`).
    #[error("the access token lacks the {0} scope")]
    InsufficientScope(&'static str),
    /// An administrative input was rejected (bad username, duplicate client, …).
    #[error("{0}")]
    Rejected(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A signing key could not be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The password hasher failed.
    #[error(transparent)]
    Hashing(#[from] HashingError),
}

/// Which of a user's sessions to end.
#[derive(Debug, Clone, Copy)]
pub enum EndWhich<'a> {
    /// This one.
    One(&'a str),
    /// All but this one (the current).
    AllBut(&'a str),
    /// All of them.
    All,
}

/// Lifetime of a back-channel logout token, seconds.
pub const LOGOUT_TOKEN_TTL: i64 = 120;

/// Attempts before a back-channel logout is given up.
pub const BACKCHANNEL_MAX_ATTEMPTS: i64 = 8;

/// Sends a logout token to a client's back-channel logout endpoint: an HTTP POST of
/// `logout_token=…` (form-encoded), success being a 2xx answer. Implemented by the HTTP
/// adapter; the domain only decides what to send, to whom and when.
#[async_trait::async_trait]
pub trait LogoutSender: Send + Sync {
    /// Delivers `logout_token` to `uri`; the error text is kept for operators.
    async fn send(&self, uri: &str, logout_token: &str) -> Result<(), String>;
}

/// A page of the revocation feed.
#[derive(Debug, Clone)]
pub struct RevocationPage {
    /// The entries, in feed order.
    pub entries: Vec<RevocationEntry>,
    /// Where the next read continues (the last entry's `seq`, or the cursor that was given).
    pub cursor: i64,
    /// How long each entry matters after its `revoked_at`, seconds.
    pub retention: i64,
    /// The IdP's clock when the page was read (Unix seconds).
    pub now: UnixTime,
}

/// A successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug)]
pub struct TokenResponse {
    /// The access token (a JWT, RFC 9068).
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The refresh token, when `offline_access` was granted.
    pub refresh_token: Option<Credential>,
    /// The ID token, when `openid` was granted and this is a code exchange.
    pub id_token: Option<String>,
    /// The granted scope.
    pub scope: Scope,
    /// When the session ends at the latest, whatever its use (its absolute lifetime), Unix
    /// seconds: a refresh token never outlives it, so neither should a cookie holding one.
    pub session_expires_at: UnixTime,
}

/// An authorization request after validation (RFC 6749 §4.1.1, RFC 7636, RFC 8707, OIDC Core
/// §3.1.2.1). Built by [`Idp::validate_authorization`].
#[derive(Debug, Clone)]
pub struct AuthorizationGrant {
    /// The client.
    pub client_id: ClientId,
    /// The redirect URI exactly as sent (it matched a registered one).
    pub redirect_uri: String,
    /// The scope requested (and allowed).
    pub scope: Scope,
    /// The resource the access token will be for.
    pub resource: String,
    /// The PKCE challenge.
    pub code_challenge: CodeChallenge,
    /// The OIDC nonce.
    pub nonce: Option<String>,
}

/// Raw authorization-request parameters, as received.
#[derive(Debug, Clone, Default)]
pub struct AuthorizationParams {
    /// `response_type`; only `code` is supported.
    pub response_type: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// `code_challenge`.
    pub code_challenge: Option<String>,
    /// `code_challenge_method`; only `S256`.
    pub code_challenge_method: Option<String>,
    /// `resource` (RFC 8707), at most one.
    pub resource: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
}

/// The parameters of an `authorization_code` token request (RFC 6749 §4.1.3, RFC 7636 §4.5,
/// RFC 8707 §2.2).
#[derive(Debug, Clone, Copy)]
pub struct CodeExchange<'a> {
    /// `code`.
    pub code: &'a str,
    /// `redirect_uri`, which must equal the one of the authorization request.
    pub redirect_uri: &'a str,
    /// `code_verifier` (PKCE).
    pub code_verifier: &'a str,
    /// `resource`, if sent: it must be the resource granted at the authorization endpoint.
    pub resource: Option<&'a str>,
    /// Who is calling (kept as evidence with the refresh family).
    pub caller: &'a LoginContext,
}

/// Who is logging in, for the session record.
#[derive(Debug, Clone, Default)]
pub struct LoginContext {
    /// `User-Agent` header (truncated to 256 bytes).
    pub user_agent: Option<String>,
    /// Client IP address.
    pub ip: Option<String>,
}

/// A new client to register.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// The `client_id`.
    pub id: ClientId,
    /// Confidential (gets a secret) or public.
    pub kind: ClientKind,
    /// Redirect URIs.
    pub redirect_uris: Vec<RedirectUri>,
    /// Post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// Allowed resources (RFC 8707 resource indicators, the access tokens' `aud`); the first is
    /// the default. Empty: the client only gets tokens for the userinfo endpoint.
    pub resources: Vec<String>,
    /// Extra scopes the client may request.
    pub extra_scopes: Vec<String>,
    /// Web origins of a browser client. Empty: the origins of its redirect URIs.
    pub web_origins: Vec<WebOrigin>,
    /// OpenID Connect Back-Channel Logout endpoint of the client, if it has one.
    pub backchannel_logout_uri: Option<RedirectUri>,
    /// Overrides of the global session policy for this client.
    pub policy: ClientPolicy,
}

/// Claims released by the userinfo endpoint (OIDC Core §5.3).
#[derive(Debug, Clone, serde::Serialize)]
pub struct UserInfo {
    /// Subject.
    pub sub: String,
    /// Username, with the `profile` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
}

/// How often a refresh re-reads the family after losing a compare-and-swap. After one loss the
/// presented token is normally the previous generation (a replay within grace); more losses
/// mean the family is rotating faster than we can read it, and the request gives up.
pub(crate) const ROTATION_ATTEMPTS: usize = 3;

/// The identity provider.
#[derive(Clone)]
pub struct Idp {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The signing keys as last loaded; empty for an IdP opened for administration.
    pub(crate) keys: Arc<std::sync::RwLock<Arc<KeyRing>>>,
    /// Whether this IdP signs (its keys are loaded and kept current), or only administers.
    pub(crate) signs: bool,
    pub(crate) config: Arc<IdpConfig>,
    pub(crate) hasher: PasswordHasher,
    pub(crate) throttle: LoginThrottle,
    /// Woken whenever this process publishes a revocation (for the streaming feed).
    pub(crate) revocations: Arc<tokio::sync::Notify>,
    /// Hears of every audit event appended (for metrics).
    pub(crate) observer: Arc<dyn AuditObserver>,
    /// Clients as recently read (see [`crate::client_cache`]).
    pub(crate) clients: Arc<crate::client_cache::ClientCache>,
}

impl std::fmt::Debug for Idp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idp")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

impl Idp {
    /// Starts the IdP on a store: loads the signing keys, generating (and storing) one for
    /// each algorithm in use when there is none, and rotating them when due (see
    /// [`Idp::maintain_keys`]).
    pub async fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: IdpConfig,
    ) -> Result<Self, IdpError> {
        Self::with_observer(store, clock, config, Arc::new(NoObserver)).await
    }

    /// [`Idp::new`], with `observer` hearing of every audit event this IdP appends from now
    /// on (the keys generated on first start included), exactly once each.
    pub async fn with_observer(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: IdpConfig,
        observer: Arc<dyn AuditObserver>,
    ) -> Result<Self, IdpError> {
        config.keys.validate().map_err(IdpError::Rejected)?;
        config
            .login_throttle
            .validate()
            .map_err(IdpError::Rejected)?;
        config.retention.validate().map_err(IdpError::Rejected)?;
        let throttle = LoginThrottle::new(config.login_throttle);
        // Other instances sharing the database wake this one's revocation streams and
        // back-channel worker too (where the backend can tell).
        let revocations = Arc::new(tokio::sync::Notify::new());
        if !store.listen_for_revocations(revocations.clone()).await? {
            tracing::debug!("store has no cross-process notifications; streams re-read instead");
        }
        let idp = Self {
            store,
            clock,
            keys: Arc::default(),
            signs: true,
            config: Arc::new(config),
            hasher: PasswordHasher::new(PasswordHasher::default_concurrency())?,
            throttle,
            revocations,
            observer,
            clients: Arc::default(),
        };
        idp.maintain_keys().await?;
        Ok(idp)
    }

    /// The IdP opened for administration (the CLI's user, client, session, audit and key
    /// commands): the same use cases on the same store, but its signing keys are not loaded
    /// (no key-encryption key is needed to manage users), nothing is minted, and other
    /// processes are not listened to. [`Idp::rotate_keys`] still works, given the key-encryption
    /// key it seals the new keys with.
    pub fn for_administration(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: IdpConfig,
    ) -> Result<Self, IdpError> {
        Ok(Self {
            store,
            clock,
            keys: Arc::default(),
            signs: false,
            throttle: LoginThrottle::new(config.login_throttle),
            config: Arc::new(config),
            hasher: PasswordHasher::new(PasswordHasher::default_concurrency())?,
            revocations: Arc::new(tokio::sync::Notify::new()),
            observer: Arc::new(NoObserver),
            clients: Arc::default(),
        })
    }

    /// Appends to the audit log. A failed write is logged at error level; it does not undo
    /// the action it records, which has already happened.
    pub(crate) async fn audit(&self, event: AuditEvent) {
        match self.store.insert_audit_event(&event).await {
            Ok(()) => self.observed(&event),
            Err(error) => {
                tracing::error!(%error, kind = event.kind.as_str(), "could not write the audit log");
            }
        }
    }

    /// Tells the observer of an event that is in the log. Events the store appends inside its
    /// own transactions are told here after the store call returned, as that call's contract
    /// says it wrote them (see [`Store::end_session`], [`Store::insert_session`],
    /// [`Store::rotate_refresh`]): each appended event is observed exactly once.
    pub(crate) fn observed(&self, event: &AuditEvent) {
        self.observer.observe(event.kind, event.category());
    }

    /// Observes the `session_ended` event the store appends whenever it ends a session.
    pub(crate) fn observed_ending(&self, reason: EndReason) {
        self.observer
            .observe(AuditKind::SessionEnded, Some(reason.as_str()));
    }

    /// Observes the events of `count` evictions under a session limit: each appends
    /// `session_ended` (policy eviction) and `session_evicted`.
    pub(crate) fn observed_evictions(&self, count: usize) {
        for _ in 0..count {
            self.observed_ending(EndReason::PolicyEviction);
            self.observer.observe(AuditKind::SessionEvicted, None);
        }
    }

    /// The sessions that are active now, of one user or of everyone, newest first, with the
    /// clients holding refresh tokens in each. Sessions past their idle or absolute lifetime
    /// are left out (and ended).
    pub async fn active_sessions(
        &self,
        user_id: Option<&str>,
    ) -> Result<Vec<(Session, Vec<String>)>, IdpError> {
        let now = self.now();
        let mut active = Vec::new();
        for (session, clients) in self.store.list_active_sessions(user_id).await? {
            match session.state_at(now, &self.config.session) {
                SessionState::Active => active.push((session, clients)),
                SessionState::Ended => {}
                SessionState::Expired(reason) => {
                    self.end_session(&session.sid, reason).await?;
                }
            }
        }
        Ok(active)
    }

    /// Ends the sessions of `user_id` that `which` selects (the user's own choice on the
    /// sessions page, or an administrator's); returns the ended `sid`s. A `sid` of another user
    /// ends nothing.
    pub async fn end_sessions(
        &self,
        user_id: &str,
        which: EndWhich<'_>,
        reason: EndReason,
    ) -> Result<Vec<String>, IdpError> {
        let mut ended = Vec::new();
        for (session, _) in self.store.list_active_sessions(Some(user_id)).await? {
            let selected = match which {
                EndWhich::One(sid) => session.sid == sid,
                EndWhich::AllBut(current) => session.sid != current,
                EndWhich::All => true,
            };
            if selected && self.end_session(&session.sid, reason).await? {
                ended.push(session.sid);
            }
        }
        Ok(ended)
    }

    /// Audit events matching `filter`, oldest first.
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, IdpError> {
        Ok(self.store.list_audit_events(filter).await?)
    }

    /// The configuration.
    pub fn config(&self) -> &IdpConfig {
        &self.config
    }

    /// The signing keys as last loaded (for the JWKS endpoint).
    pub fn keys(&self) -> Arc<KeyRing> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The userinfo endpoint's URL: a resource every client may ask for, and an audience of
    /// every access token with the `openid` scope.
    pub fn userinfo_url(&self) -> String {
        format!("{}/userinfo", self.config.issuer.trim_end_matches('/'))
    }

    /// The current time from the injected clock.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// The store (for the CLI's listing commands).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    // ---- administration -------------------------------------------------------------------

    /// Creates a user.
    #[tracing::instrument(skip_all, fields(username = %username))]
    pub async fn add_user(&self, username: Username, password: Password) -> Result<User, IdpError> {
        check_new_password(&password)?;
        let user = User {
            id: random_id(),
            username,
            password_hash: self.hasher.hash(password).await?,
            disabled: false,
            created_at: self.now(),
        };
        self.store.insert_user(&user).await.map_err(|e| match e {
            StoreError::Conflict(_) => {
                IdpError::Rejected(format!("user {} already exists", user.username))
            }
            other => other.into(),
        })?;
        self.audit(
            AuditEvent::new(user.created_at, AuditKind::UserCreated, "admin").user(&user.id),
        )
        .await;
        Ok(user)
    }

    /// Sets a new password (at least 8 characters). Every session of the user ends at once,
    /// published on the revocation feed and sent to back-channel logout endpoints: whoever
    /// signed in with the old password is out.
    #[tracing::instrument(skip_all, fields(username = %username))]
    pub async fn set_password(
        &self,
        username: &Username,
        password: Password,
    ) -> Result<(), IdpError> {
        check_new_password(&password)?;
        let user = self
            .store
            .find_user_by_username(username)
            .await?
            .ok_or_else(|| IdpError::Rejected(format!("no user {username}")))?;
        let hash = self.hasher.hash(password).await?;
        self.store.update_user_password(&user.id, &hash).await?;
        let now = self.now();
        self.audit(AuditEvent::new(now, AuditKind::PasswordChanged, "admin").user(&user.id))
            .await;
        // Whoever was guessing the old password starts from nothing, and so does the owner.
        self.store
            .clear_login_counters(&crate::throttle::username_key(username.as_str()))
            .await?;
        self.end_sessions_of_user(&user.id, EndReason::PasswordChanged, now)
            .await?;
        Ok(())
    }

    /// Ends every session of a user at once: published on the feed (and queued for back-channel
    /// logout by the store), and audited one by one. Returns the ended `sid`s.
    pub(crate) async fn end_sessions_of_user(
        &self,
        user_id: &str,
        reason: EndReason,
        now: UnixTime,
    ) -> Result<Vec<String>, IdpError> {
        let ended = self
            .store
            .end_sessions_of_user(user_id, now, reason)
            .await?;
        for _ in &ended {
            self.observed_ending(reason);
        }
        self.revocations.notify_waiters();
        Ok(ended)
    }

    /// Disables (or re-enables) a user. Disabling ends all of the user's sessions at once.
    #[tracing::instrument(skip_all, fields(username = %username, disabled))]
    pub async fn set_user_disabled(
        &self,
        username: &Username,
        disabled: bool,
    ) -> Result<(), IdpError> {
        let user = self
            .store
            .find_user_by_username(username)
            .await?
            .ok_or_else(|| IdpError::Rejected(format!("no user {username}")))?;
        self.store.update_user_disabled(username, disabled).await?;
        let now = self.now();
        self.audit(
            AuditEvent::new(now, AuditKind::UserDisabledChanged, "admin")
                .user(&user.id)
                .details(json!({"disabled": disabled})),
        )
        .await;
        if disabled {
            let ended = self
                .end_sessions_of_user(&user.id, EndReason::UserDisabled, now)
                .await?;
            tracing::info!(sessions_ended = ended.len(), "user disabled");
        }
        Ok(())
    }

    /// Registers a client. Confidential clients get a generated secret, returned here once
    /// and stored only as a hash. Rejected without a redirect URI, with an invalid resource or
    /// scope, or when the client id is taken.
    #[tracing::instrument(skip_all, fields(client_id = %new.id))]
    pub async fn add_client(
        &self,
        new: NewClient,
    ) -> Result<(Client, Option<Credential>), IdpError> {
        if new.redirect_uris.is_empty() {
            return Err(IdpError::Rejected(
                "a client needs at least one redirect URI".into(),
            ));
        }
        if let Some(bad) = new.resources.iter().find(|r| !scope::is_valid_resource(r)) {
            return Err(IdpError::Rejected(format!(
                "resource {bad:?} is not an absolute URI without fragment"
            )));
        }
        let extra = Scope::parse(&new.extra_scopes.join(" "))
            .map_err(|e| IdpError::Rejected(e.to_string()))?;
        let web_origins = match new.kind {
            ClientKind::Browser if new.web_origins.is_empty() => {
                let mut origins: Vec<WebOrigin> = Vec::new();
                for origin in new.redirect_uris.iter().filter_map(WebOrigin::of) {
                    if !origins.contains(&origin) {
                        origins.push(origin);
                    }
                }
                origins
            }
            ClientKind::Browser => new.web_origins,
            _ if new.web_origins.is_empty() => Vec::new(),
            _ => {
                return Err(IdpError::Rejected(
                    "web origins are only for browser clients".into(),
                ));
            }
        };
        if new.kind == ClientKind::Browser && web_origins.is_empty() {
            return Err(IdpError::Rejected(
                "a browser client needs a web origin (https, or http on a loopback host)".into(),
            ));
        }
        new.policy
            .validate()
            .map_err(|e| IdpError::Rejected(e.into()))?;
        let secret = (new.kind == ClientKind::Confidential).then(Credential::generate);
        let client = Client {
            id: new.id,
            kind: new.kind,
            secret_hash: secret.as_ref().map(Credential::hash),
            redirect_uris: new.redirect_uris,
            post_logout_redirect_uris: new.post_logout_redirect_uris,
            allowed_resources: new.resources,
            extra_scopes: extra.iter().map(str::to_owned).collect(),
            web_origins,
            backchannel_logout_uri: new.backchannel_logout_uri,
            policy: new.policy,
            created_at: self.now(),
        };
        self.store
            .insert_client(&client)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    IdpError::Rejected(format!("client {} already exists", client.id))
                }
                other => other.into(),
            })?;
        self.audit(
            AuditEvent::new(client.created_at, AuditKind::ClientCreated, "admin")
                .client(client.id.as_str())
                .details(json!({"kind": client.kind.as_str()})),
        )
        .await;
        Ok((client, secret))
    }

    /// Replaces a client's overrides of the global session policy (unset fields follow the
    /// global `[session]` values). Applies from the next request on, to existing sessions too.
    #[tracing::instrument(skip_all, fields(client_id = %client_id))]
    pub async fn set_client_policy(
        &self,
        client_id: &ClientId,
        policy: ClientPolicy,
    ) -> Result<(), IdpError> {
        policy
            .validate()
            .map_err(|e| IdpError::Rejected(e.into()))?;
        let updated = self.store.update_client_policy(client_id, &policy).await;
        self.clients.forget(client_id);
        if !updated? {
            return Err(IdpError::Rejected(format!("no client {client_id}")));
        }
        self.audit(
            AuditEvent::new(self.now(), AuditKind::ClientPolicyChanged, "admin")
                .client(client_id.as_str())
                .details(json!({"policy": policy})),
        )
        .await;
        Ok(())
    }

    /// Wakes the revocation stream and the back-channel worker after `count` sessions ended.
    pub(crate) fn published_endings(&self, count: usize) {
        if count > 0 {
            self.revocations.notify_waiters();
        }
    }

    /// Records that `client` obtains tokens in `session`, within the client's own limit on
    /// sessions per user (see [`ClientPolicy`]), in one store transaction: the oldest other
    /// sessions holding its tokens end, or this grant is refused.
    pub(crate) async fn admit_client_session(
        &self,
        session: &Session,
        user: &User,
        client: &Client,
        caller: &LoginContext,
        now: UnixTime,
    ) -> Result<(), IdpError> {
        let global = &self.config.session;
        let (max, action) = client.policy.session_limit(global);
        let limit = SessionLimit {
            max,
            evict_oldest: action == SessionLimitAction::EndOldest,
            idle_since: now - global.idle_timeout,
            absolute_since: now - global.absolute_lifetime,
        };
        let admission = self
            .store
            .admit_client_session(&session.sid, &user.id, &client.id, now, limit)
            .await?;
        match admission {
            SessionAdmission::Admitted { evicted } => {
                self.observed_evictions(evicted.len());
                self.published_endings(evicted.len());
                Ok(())
            }
            SessionAdmission::Refused => {
                self.audit(
                    AuditEvent::new(now, AuditKind::LoginFailed, "user")
                        .user(&user.id)
                        .session(&session.sid)
                        .client(client.id.as_str())
                        .origin(caller.ip.as_deref(), caller.user_agent.as_deref())
                        .details(
                            json!({"reason": "client_session_limit", "max_sessions_per_user": max}),
                        ),
                )
                .await;
                Err(IdpError::ClientSessionLimit(max))
            }
        }
    }

    /// The latest time tokens of `client` in `session` can be refreshed until: the session's
    /// absolute lifetime, or the client's own for a family created at `family_created_at`.
    pub(crate) fn grant_expires_at(
        &self,
        session: &Session,
        client: &Client,
        family_created_at: UnixTime,
    ) -> UnixTime {
        let session_end = session.created_at + self.config.session.absolute_lifetime;
        match client.policy.absolute_lifetime {
            Some(lifetime) => session_end.min(family_created_at.saturating_add(lifetime)),
            None => session_end,
        }
    }

    /// Ends a session and all refresh families in it (logout). `false` if it had already ended.
    pub async fn end_session(&self, sid: &str, reason: EndReason) -> Result<bool, IdpError> {
        self.end_session_because(sid, reason, None).await
    }

    /// Ends a session, with `cause` (the event that explains why, such as a detected reuse
    /// with its evidence) audited in the same transaction as the ending.
    #[tracing::instrument(skip_all, fields(sid = %sid))]
    pub(crate) async fn end_session_because(
        &self,
        sid: &str,
        reason: EndReason,
        cause: Option<&AuditEvent>,
    ) -> Result<bool, IdpError> {
        let ended = self
            .store
            .end_session(sid, self.now(), reason, cause)
            .await?;
        if let Some(cause) = cause {
            self.observed(cause);
        }
        if ended {
            self.observed_ending(reason);
            self.published_endings(1);
            tracing::info!(reason = reason.as_str(), "session ended");
        }
        Ok(ended)
    }

    // ---- authorization endpoint ---------------------------------------------------------------

    /// Looks up the client of an authorization request and the redirect URI to answer on.
    /// Errors here must be shown to the user, never redirected (RFC 6749 §4.1.2.1).
    pub async fn authorization_client(
        &self,
        client_id: &str,
        redirect_uri: Option<&str>,
    ) -> Result<(Client, String), IdpError> {
        let client = self.get_client(client_id).await?;
        // OAuth 2.1 requires redirect_uri to be sent whenever more than one is registered; we
        // require it always, which also covers the single-URI case unambiguously.
        let requested = redirect_uri
            .ok_or_else(|| IdpError::InvalidRequest("redirect_uri is required".into()))?;
        if client.redirect_uri_matching(requested).is_none() {
            return Err(IdpError::InvalidRequest(
                "redirect_uri is not registered for this client".into(),
            ));
        }
        Ok((client, requested.to_owned()))
    }

    /// Validates the rest of an authorization request for a known client and redirect URI.
    /// Errors here are redirected back to the client with `error` (RFC 6749 §4.1.2.1).
    pub fn validate_authorization(
        &self,
        client: &Client,
        redirect_uri: String,
        params: AuthorizationParams,
    ) -> Result<AuthorizationGrant, IdpError> {
        match params.response_type.as_deref() {
            Some("code") => {}
            Some(_) => return Err(IdpError::UnsupportedResponseType),
            None => return Err(IdpError::InvalidRequest("response_type is required".into())),
        }
        let scope = Scope::parse(params.scope.as_deref().unwrap_or(""))
            .map_err(|e| IdpError::InvalidScope(e.to_string()))?;
        if let Some(bad) = scope
            .iter()
            .find(|s| !scope::BUILT_IN.contains(s) && !client.extra_scopes.iter().any(|e| e == s))
        {
            return Err(IdpError::InvalidScope(format!(
                "scope {bad} is not allowed for this client"
            )));
        }
        match params.code_challenge_method.as_deref() {
            Some("S256") => {}
            Some(_) => {
                return Err(IdpError::InvalidRequest(
                    "code_challenge_method must be S256".into(),
                ));
            }
            None => {
                return Err(IdpError::InvalidRequest(
                    "PKCE is required: send code_challenge and code_challenge_method=S256".into(),
                ));
            }
        }
        let code_challenge =
            CodeChallenge::parse_s256(params.code_challenge.as_deref().unwrap_or(""))
                .map_err(|e| IdpError::InvalidRequest(e.to_string()))?;
        let resource = self.resolve_resource(client, params.resource.as_deref())?;
        if params.nonce.as_ref().is_some_and(|n| n.len() > 512) {
            return Err(IdpError::InvalidRequest(
                "nonce is longer than 512 bytes".into(),
            ));
        }
        Ok(AuthorizationGrant {
            client_id: client.id.clone(),
            redirect_uri,
            scope,
            resource,
            code_challenge,
            nonce: params.nonce,
        })
    }

    fn resolve_resource(
        &self,
        client: &Client,
        requested: Option<&str>,
    ) -> Result<String, IdpError> {
        let userinfo = self.userinfo_url();
        match requested {
            None => Ok(client
                .allowed_resources
                .first()
                .cloned()
                .unwrap_or(userinfo)),
            Some(r) if r == userinfo || client.allowed_resources.iter().any(|a| a == r) => {
                Ok(r.to_owned())
            }
            Some(_) => Err(IdpError::InvalidTarget(
                "resource is not allowed for this client".into(),
            )),
        }
    }

    /// Issues an authorization code for a validated request in an active session.
    #[tracing::instrument(skip_all, fields(client_id = %grant.client_id, sid = %session.sid))]
    pub async fn issue_authorization_code(
        &self,
        grant: AuthorizationGrant,
        session: &Session,
    ) -> Result<Credential, IdpError> {
        let now = self.now();
        let code = Credential::generate();
        let record = AuthorizationCode {
            code_hash: code.hash(),
            client_id: grant.client_id,
            redirect_uri: grant.redirect_uri,
            sid: session.sid.clone(),
            user_id: session.user_id.clone(),
            scope: grant.scope,
            resource: grant.resource,
            code_challenge: grant.code_challenge,
            nonce: grant.nonce,
            auth_time: session.auth_time,
            created_at: now,
            expires_at: now + self.config.authorization_code_ttl,
        };
        self.store.insert_authorization_code(&record).await?;
        self.store.touch_session(&session.sid, now).await?;
        Ok(code)
    }

    // ---- back-channel logout -------------------------------------------------------------------

    /// Sends the due back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4)
    /// through `sender`, at most `limit`, and records each outcome: delivered, retried later
    /// with exponential backoff (10 s doubling, at most an hour apart), or given up after
    /// [`BACKCHANNEL_MAX_ATTEMPTS`]. Each delivery is claimed for a minute first, so several
    /// instances never send the same one at once. Returns how many were attempted.
    pub async fn deliver_backchannel_logouts(
        &self,
        sender: &dyn LogoutSender,
        limit: u32,
    ) -> Result<usize, IdpError> {
        let now = self.now();
        let due = self
            .store
            .claim_backchannel_deliveries(now, 60, limit)
            .await?;
        for delivery in &due {
            let token = self.mint_logout_token(&delivery.client_id, &delivery.sid)?;
            let outcome = match sender.send(&delivery.uri, &token).await {
                Ok(()) => DeliveryOutcome::Delivered,
                Err(error) if delivery.attempts + 1 >= BACKCHANNEL_MAX_ATTEMPTS => {
                    DeliveryOutcome::GaveUp { error }
                }
                Err(error) => {
                    let backoff = (10_i64 << delivery.attempts.clamp(0, 9)).min(3600);
                    DeliveryOutcome::Retry {
                        retry_at: now + backoff,
                        error,
                    }
                }
            };
            self.store
                .record_backchannel_attempt(delivery.id, now, &outcome)
                .await?;
            let (kind, details) = match &outcome {
                DeliveryOutcome::Delivered => (
                    AuditKind::BackchannelDelivered,
                    json!({"attempt": delivery.attempts + 1}),
                ),
                DeliveryOutcome::Retry { retry_at, error } => (
                    AuditKind::BackchannelFailed,
                    json!({"attempt": delivery.attempts + 1, "retry_at": retry_at, "error": error}),
                ),
                DeliveryOutcome::GaveUp { error } => (
                    AuditKind::BackchannelFailed,
                    json!({"attempt": delivery.attempts + 1, "gave_up": true, "error": error}),
                ),
            };
            self.audit(
                AuditEvent::new(now, kind, "system")
                    .session(&delivery.sid)
                    .client(&delivery.client_id)
                    .details(details),
            )
            .await;
        }
        Ok(due.len())
    }

    /// Deliveries not yet made (pending or given up), for operators.
    pub async fn undelivered_backchannel_logouts(
        &self,
    ) -> Result<Vec<BackchannelDelivery>, IdpError> {
        Ok(self.store.list_undelivered_backchannel().await?)
    }

    fn mint_logout_token(&self, client_id: &str, sid: &str) -> Result<String, IdpError> {
        let now = self.now();
        let claims = json!({
            "iss": self.config.issuer,
            "aud": client_id,
            "iat": now,
            "exp": now + LOGOUT_TOKEN_TTL,
            "jti": random_id(),
            "sid": sid,
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        });
        let keys = self.keys();
        let key = keys
            .signer(ID_TOKEN_ALG)
            .ok_or_else(|| KeyError::from_message("no ID-token signing key".into()))?;
        Ok(token::sign(key, token::LOGOUT_TOKEN_TYP, &claims)?)
    }

    // ---- the revocation feed ---------------------------------------------------------------

    /// How long a revocation matters, seconds: the longest an access token issued before it
    /// can still be valid. Resource servers may forget an entry this long after it was revoked.
    pub fn revocation_retention(&self) -> i64 {
        self.config.access_token_ttl
    }

    /// The revocation feed after the cursor `after` (0: from the start of the retention
    /// window), at most `limit` entries. Entries older than the retention window are skipped
    /// (and deleted by the retention job, [`crate::retention`]): they can no longer matter.
    pub async fn revocation_feed(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<RevocationPage, IdpError> {
        let now = self.now();
        let retention = self.revocation_retention();
        let since = now - retention;
        let entries = self
            .store
            .list_revocations(after.max(0), since, limit)
            .await?;
        let cursor = match entries.last() {
            Some(last) => last.seq,
            // A cursor beyond anything this feed ever issued comes from another database (a
            // reset or a restore): send the reader back to the start, or it would wait forever
            // for sequence numbers that may never come.
            None if after > self.store.latest_revocation_seq().await? => 0,
            None => after.max(0),
        };
        Ok(RevocationPage {
            entries,
            cursor,
            retention,
            now,
        })
    }

    /// Notified whenever this process publishes a revocation. Other processes sharing the
    /// database are only seen by reading the feed again.
    pub fn revocation_notifier(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.revocations)
    }

    // ---- tokens the IdP consumes itself -----------------------------------------------------

    /// Validates an access token presented to the userinfo endpoint: ours, unexpired, not
    /// revoked, its session still active, and with the `openid` scope.
    pub async fn userinfo(&self, access_token: &str) -> Result<UserInfo, IdpError> {
        let (claims, user) = self.active_access_token(access_token).await?;
        // The userinfo endpoint is a resource server too (RFC 9068 §4): the token must name it.
        if !claims.aud.contains(&self.userinfo_url()) {
            return Err(IdpError::InvalidToken);
        }
        let scope = Scope::parse(&claims.scope).unwrap_or_default();
        if !scope.contains(scope::OPENID) {
            return Err(IdpError::InsufficientScope(scope::OPENID));
        }
        Ok(UserInfo {
            sub: user.id,
            preferred_username: scope
                .contains(scope::PROFILE)
                .then(|| user.username.to_string()),
        })
    }

    /// An access token that is ours, unexpired, not revoked, of an active session of an
    /// enabled user; [`IdpError::InvalidToken`] otherwise.
    async fn active_access_token(
        &self,
        access_token: &str,
    ) -> Result<(AccessTokenClaims, User), IdpError> {
        let now = self.now();
        let claims: AccessTokenClaims = token::verify_own(
            &self.keys(),
            &self.config.issuer,
            token::ACCESS_TOKEN_TYP,
            access_token,
            now,
            true,
        )
        .map_err(|_| IdpError::InvalidToken)?;
        if self.store.is_access_token_revoked(&claims.jti).await? {
            return Err(IdpError::InvalidToken);
        }
        let session = self
            .store
            .find_session(&claims.sid)
            .await?
            .ok_or(IdpError::InvalidToken)?;
        let Some((_, user)) = self.active_session_user(session).await? else {
            return Err(IdpError::InvalidToken);
        };
        Ok((claims, user))
    }

    /// Token introspection (RFC 7662 §2) for an authenticated confidential client (a resource
    /// server): the claims of an active access token whose `aud` names one of the client's
    /// resources, with the username; `None` for anything else (revoked, expired, meant for
    /// another resource, another issuer's, a refresh or ID token, garbage).
    pub async fn introspect(
        &self,
        client: &Client,
        token: &str,
    ) -> Result<Option<(AccessTokenClaims, User)>, IdpError> {
        if client.kind != ClientKind::Confidential {
            return Err(IdpError::InvalidClient);
        }
        match self.active_access_token(token).await {
            // RFC 7662 §2.2, §4: a resource server may only learn about tokens meant for it.
            Ok((claims, _))
                if !client
                    .allowed_resources
                    .iter()
                    .any(|r| claims.aud.contains(r)) =>
            {
                Ok(None)
            }
            Ok(found) => Ok(Some(found)),
            Err(IdpError::InvalidToken) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Verifies an `id_token_hint` (OIDC RP-Initiated Logout §2): issued here, for any
    /// client; expiry is not checked, since an RP may log out long after the ID token expired.
    pub fn verify_id_token_hint(&self, id_token: &str) -> Result<IdTokenClaims, IdpError> {
        token::verify_own(
            &self.keys(),
            &self.config.issuer,
            token::ID_TOKEN_TYP,
            id_token,
            self.now(),
            false,
        )
        .map_err(|e| match e {
            OwnTokenError::Invalid | OwnTokenError::Expired => {
                IdpError::InvalidRequest("id_token_hint is not an ID token issued here".into())
            }
        })
    }

    /// The client with this id; [`IdpError::InvalidClient`] if there is none.
    pub(crate) async fn get_client(&self, client_id: &str) -> Result<Client, IdpError> {
        self.find_client(client_id)
            .await?
            .ok_or(IdpError::InvalidClient)
    }

    /// Finds a client by id (for end-session's `post_logout_redirect_uri` check).
    pub async fn find_client(&self, client_id: &str) -> Result<Option<Client>, IdpError> {
        let Ok(id) = ClientId::parse(client_id) else {
            return Ok(None);
        };
        let now = self.now();
        if let Some(client) = self.clients.get(&id, now) {
            return Ok(Some(client));
        }
        let found = self.store.find_client(&id).await?;
        if let Some(client) = &found {
            self.clients.put(client, now);
        }
        Ok(found)
    }

    // ---- minting ------------------------------------------------------------------------------

    /// Mints the access token recorded as `issued` (its `jti` and `exp`).
    pub(crate) fn mint_access_token(
        &self,
        session: &Session,
        user_id: &str,
        client: &Client,
        scope: &Scope,
        resource: &str,
        issued: &IssuedAccessToken,
    ) -> Result<String, IdpError> {
        let now = self.now();
        let mut audience = vec![resource.to_owned()];
        let userinfo = self.userinfo_url();
        if scope.contains(scope::OPENID) && resource != userinfo {
            audience.push(userinfo);
        }
        let claims = AccessTokenClaims {
            iss: self.config.issuer.clone(),
            sub: user_id.to_owned(),
            aud: Audience(audience),
            exp: issued.expires_at,
            iat: now,
            jti: issued.jti.clone(),
            client_id: client.id.to_string(),
            scope: scope.to_string(),
            sid: session.sid.clone(),
            auth_time: session.auth_time,
        };
        let keys = self.keys();
        let key = keys
            .signer(self.config.access_token_alg)
            .ok_or_else(|| KeyError::from_message("no access-token signing key".into()))?;
        Ok(token::sign(key, token::ACCESS_TOKEN_TYP, &claims)?)
    }

    pub(crate) fn mint_id_token(
        &self,
        session: &Session,
        user: &User,
        client: &Client,
        scope: &Scope,
        nonce: Option<String>,
    ) -> Result<String, IdpError> {
        let now = self.now();
        let claims = IdTokenClaims {
            iss: self.config.issuer.clone(),
            sub: user.id.clone(),
            aud: client.id.to_string(),
            exp: now + self.config.id_token_ttl,
            iat: now,
            auth_time: session.auth_time,
            nonce,
            sid: session.sid.clone(),
            preferred_username: scope
                .contains(scope::PROFILE)
                .then(|| user.username.to_string()),
        };
        let keys = self.keys();
        let key = keys
            .signer(ID_TOKEN_ALG)
            .ok_or_else(|| KeyError::from_message("no ID-token signing key".into()))?;
        Ok(token::sign(key, token::ID_TOKEN_TYP, &claims)?)
    }
}

/// "N seconds" under two minutes, "N minutes" (rounded up) beyond.
fn wait_text(seconds: i64) -> String {
    match seconds {
        ..=1 => "1 second".to_owned(),
        2..120 => format!("{seconds} seconds"),
        _ => format!("{} minutes", (seconds + 59) / 60),
    }
}

/// The rule for a new password: NIST SP 800-63B §5.1.1.2's minimum of 8 characters, and an
/// upper bound that protects the hasher.
fn check_new_password(password: &Password) -> Result<(), IdpError> {
    let text = password.expose();
    if text.chars().count() < Password::MIN_CHARS || text.len() > Password::MAX_BYTES {
        return Err(IdpError::Rejected(format!(
            "a password is {} characters to {} bytes",
            Password::MIN_CHARS,
            Password::MAX_BYTES
        )));
    }
    Ok(())
}

pub(crate) fn truncate(mut value: String, max_bytes: usize) -> String {
    if value.len() > max_bytes {
        let mut end = max_bytes;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value.truncate(end);
    }
    value
}
