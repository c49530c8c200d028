//! The use cases: what the identity provider does, independent of how requests arrive.
//!
//! The HTTP adapter parses requests into the types of this crate, calls one method of [`Idp`],
//! and maps [`IdpError`] to the protocol's error format in one place.

use std::sync::Arc;

use crate::audit::{AuditEvent, AuditFilter, AuditKind, AuditObserver, NoObserver};
use crate::client::{ClientId, ClientKind, RedirectUri, WebOrigin};
use crate::clock::{Clock, UnixTime};
use crate::code::CodeChallenge;
use crate::keys::{KeyEncryptionKey, KeyError, KeyPolicy, KeyRing, SigningAlgorithm};
use crate::scope::Scope;
use crate::secret::Credential;
use crate::session::{ClientPolicy, EndReason, SessionPolicy};
use crate::store::{RevocationEntry, Store, StoreError};
use crate::throttle::{LoginThrottle, ThrottlePolicy};

use crate::hashing::{HashingError, HashingPolicy, PasswordHasher};

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
    /// How old a DPoP proof's `iat` may be, seconds (RFC 9449 §11.1): the window within which
    /// its `jti` is remembered. Default 60.
    pub dpop_proof_max_age: i64,
    /// How password hashing gives way to other requests (see [`crate::hashing`]).
    pub password_hashing: HashingPolicy,
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
            dpop_proof_max_age: 60,
            password_hashing: HashingPolicy::default(),
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
    /// A DPoP proof that is malformed, fails a check or was used before (RFC 9449 §5
    /// `invalid_dpop_proof`); the text says which check.
    #[error("{0}")]
    InvalidDpopProof(String),
    /// The client must put a server nonce in its DPoP proofs, and this one had none or a
    /// stale one (RFC 9449 §8 `use_dpop_nonce`): `nonce` is the one to retry with (the
    /// `DPoP-Nonce` header).
    #[error(
        "this client's DPoP proofs must carry the server's nonce: retry with the one in the DPoP-Nonce header"
    )]
    UseDpopNonce {
        /// The nonce to use; `None` only while no key signs.
        nonce: Option<String>,
    },
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
    /// The DPoP key the access token is bound to (`cnf.jkt`; `token_type` `DPoP`), if the
    /// request came with a proof; `None`: a bearer token.
    pub dpop: Option<crate::dpop::DpopKey>,
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
    /// `dpop_jkt` (RFC 9449 §10): the key the code exchange must prove.
    pub dpop_jkt: Option<String>,
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
    /// `dpop_jkt` (RFC 9449 §10): the JWK SHA-256 thumbprint of the client's DPoP key.
    pub dpop_jkt: Option<String>,
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
    /// The DPoP key the request proved it holds ([`Idp::accept_dpop_proof`]): the access
    /// token is bound to it, and so is a public client's refresh family.
    pub dpop: Option<&'a crate::dpop::DpopKey>,
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

/// What an IdP does with the changes other processes announce through the store.
struct Listener {
    revocations: Arc<tokio::sync::Notify>,
    clients: Arc<crate::client_cache::ClientCache>,
}

impl crate::store::ChangeListener for Listener {
    fn revocations_published(&self) {
        self.revocations.notify_waiters();
    }

    fn client_changed(&self, client_id: &str) {
        self.clients.forget(client_id);
    }

    fn notifications_lost(&self) {
        self.clients.clear();
        // Readers re-read from their cursors: what was published meanwhile was not heard.
        self.revocations.notify_waiters();
    }
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
        let clients = Arc::<crate::client_cache::ClientCache>::default();
        let listener = Arc::new(Listener {
            revocations: revocations.clone(),
            clients: clients.clone(),
        });
        if !store.listen(listener).await? {
            tracing::debug!(
                "store has no cross-process notifications; streams re-read and caches expire instead"
            );
        }
        let hasher = PasswordHasher::for_this_machine(config.password_hashing)?;
        let idp = Self {
            store,
            clock,
            keys: Arc::default(),
            signs: true,
            config: Arc::new(config),
            hasher,
            throttle,
            revocations,
            observer,
            clients,
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
        let hasher = PasswordHasher::for_this_machine(config.password_hashing)?;
        Ok(Self {
            store,
            clock,
            keys: Arc::default(),
            signs: false,
            throttle: LoginThrottle::new(config.login_throttle),
            config: Arc::new(config),
            hasher,
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

    /// Audit events matching `filter`, oldest first.
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, IdpError> {
        Ok(self.store.list_audit_events(filter).await?)
    }

    /// The configuration.
    pub fn config(&self) -> &IdpConfig {
        &self.config
    }

    /// The requests in flight, as password hashing sees them: the server holds one
    /// [`crate::hashing::Serving`] per request ([`crate::hashing::Demand::serving`]), and sign-ins'
    /// hashes wait while others are served (see [`crate::hashing`]).
    pub fn hashing_demand(&self) -> &Arc<crate::hashing::Demand> {
        self.hasher.demand()
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
}

/// "N seconds" under two minutes, "N minutes" (rounded up) beyond.
fn wait_text(seconds: i64) -> String {
    match seconds {
        ..=1 => "1 second".to_owned(),
        2..120 => format!("{seconds} seconds"),
        _ => format!("{} minutes", (seconds + 59) / 60),
    }
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
