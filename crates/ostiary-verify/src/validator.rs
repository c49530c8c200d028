//! [`Validator`]: the checks of RFC 9068 §4 in a fixed order.
//!
//! 1. size limit, then three base64url parts (module `token`);
//! 2. header: no repeated member, `alg` allowed, no `crit`, no `b64`/`zip`/`enc`, `typ` is
//!    `at+jwt`;
//! 3. key chosen from the JWKS by `kid`, the key's type deciding which `alg` it verifies;
//! 4. signature verified, **before** any claim is read, so a forged token is always
//!    `bad_signature`, never `expired`;
//! 5. claims parsed strictly (no repeated member), then `iss`, `aud`, `exp`, `nbf`, `iat`
//!    checked, then the optional maximum age and maximum lifetime.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, AlgorithmFamily};
use ostiary_jose::dpop::nonce::NonceKey;

use crate::cache::RemoteJwks;
use crate::dpop::{
    DpopRequest, MemoryReplayStore, ProofError, ProofId, ProofPolicy, ReplayStore,
    ReplayStoreError, Seen,
};
use crate::jwks::{KeySet, Selection};
use crate::revocation::RevocationFeed;
use crate::token::{CheckedHeader, CompactToken, check_header};
use crate::{AccessTokenClaims, Clock, ConfigError, JwksSource, SystemClock, ValidationError};

/// Default clock-skew allowance for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Default maximum length of a compact token, bytes (16 KiB).
pub const DEFAULT_MAX_TOKEN_SIZE: usize = 16 * 1024;

/// Validates JWT access tokens (RFC 9068) issued by one identity provider for one audience.
///
/// Cheap to clone (an `Arc` inside) and meant to be built once at start-up and shared; clones
/// share the JWKS cache. Its `Debug` shows the issuer, audience and algorithms, never keys.
///
/// ```
/// use ostiary_verify::{Algorithm, JwksSource, Validator};
///
/// let validator = Validator::new(
///     "https://id.example",
///     "https://api.example",
///     &[Algorithm::EdDSA, Algorithm::ES256],
///     JwksSource::remote("https://id.example/jwks.json"),
/// )?
/// .with_leeway(std::time::Duration::from_secs(10));
/// # Ok::<(), ostiary_verify::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Validator {
    config: Arc<Config>,
    keys: Arc<Keys>,
}

#[derive(Clone)]
struct Config {
    issuer: String,
    audience: String,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    max_age: Option<Duration>,
    max_lifetime: Option<Duration>,
    clock: Arc<dyn Clock>,
    max_token_size: usize,
    revocations: Option<RevocationFeed>,
    dpop: ProofPolicy,
    /// The resource server's public base URL (scheme, host, port, path prefix), which DPoP
    /// proofs name in `htu`; `None`: the extractor accepts no DPoP-bound token.
    public_url: Option<String>,
    /// Whether bearer tokens are refused (only DPoP-bound ones accepted).
    dpop_required: bool,
    /// Shared by every clone of the validator (and kept by the `with_*` builders).
    replays: Arc<dyn ReplayStore>,
    /// The key of this resource server's DPoP nonces (RFC 9449 §9), when it asks for them.
    nonces: Option<Arc<NonceKey>>,
    #[cfg(feature = "axum")]
    realm: Option<String>,
}

enum Keys {
    Static(KeySet),
    Remote(Arc<RemoteJwks>),
}

impl Validator {
    /// A validator accepting tokens whose `iss` is exactly `issuer`, whose `aud` contains
    /// `audience`, signed with one of `algorithms` by a key from `jwks`.
    ///
    /// Defaults: 30 s leeway ([`with_leeway`](Self::with_leeway)), the system clock
    /// ([`with_clock`](Self::with_clock)), 16 KiB maximum token size
    /// ([`with_max_token_size`](Self::with_max_token_size)), no maximum age
    /// ([`with_max_age`](Self::with_max_age)) nor lifetime
    /// ([`with_max_lifetime`](Self::with_max_lifetime)). A remote JWKS is fetched on first
    /// use, or earlier with [`prefetch`](Self::prefetch).
    ///
    /// # Errors
    /// - [`ConfigError::EmptyIssuer`], [`ConfigError::EmptyAudience`],
    ///   [`ConfigError::NoAlgorithms`];
    /// - [`ConfigError::SymmetricAlgorithm`] if `algorithms` lists HS256/384/512 (`none` has no
    ///   [`Algorithm`] value, so it cannot be listed at all);
    /// - [`ConfigError::NoUsableKeys`] for a static JWKS without a key for these algorithms;
    /// - [`ConfigError::InvalidJwksUrl`], [`ConfigError::InsecureJwksUrl`],
    ///   [`ConfigError::HttpClient`] for a remote one;
    /// - [`ConfigError::NoCryptoProvider`] if `jsonwebtoken` was built without exactly one
    ///   crypto backend (it would panic on first use otherwise).
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        algorithms: &[Algorithm],
        jwks: JwksSource,
    ) -> Result<Self, ConfigError> {
        if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
            return Err(ConfigError::NoCryptoProvider);
        }
        let issuer = issuer.into();
        let audience = audience.into();
        if issuer.is_empty() {
            return Err(ConfigError::EmptyIssuer);
        }
        if audience.is_empty() {
            return Err(ConfigError::EmptyAudience);
        }
        if algorithms.is_empty() {
            return Err(ConfigError::NoAlgorithms);
        }
        if let Some(&symmetric) = algorithms
            .iter()
            .find(|alg| alg.family() == AlgorithmFamily::Hmac)
        {
            return Err(ConfigError::SymmetricAlgorithm(symmetric));
        }
        let mut allowed = Vec::with_capacity(algorithms.len());
        for alg in algorithms {
            if !allowed.contains(alg) {
                allowed.push(*alg);
            }
        }

        let keys = match jwks {
            JwksSource::Static(set) => {
                let keys = KeySet::from_jwk_set(&set);
                if !keys.serves_any(&allowed) {
                    return Err(ConfigError::NoUsableKeys);
                }
                Keys::Static(keys)
            }
            JwksSource::Remote { url } => Keys::Remote(Arc::new(RemoteJwks::new(&url)?)),
        };

        Ok(Self {
            config: Arc::new(Config {
                issuer,
                audience,
                algorithms: allowed,
                leeway: DEFAULT_LEEWAY,
                max_age: None,
                max_lifetime: None,
                clock: Arc::new(SystemClock),
                max_token_size: DEFAULT_MAX_TOKEN_SIZE,
                revocations: None,
                dpop: ProofPolicy::default(),
                public_url: None,
                dpop_required: false,
                replays: Arc::new(MemoryReplayStore::default()),
                nonces: None,
                #[cfg(feature = "axum")]
                realm: None,
            }),
            keys: Arc::new(keys),
        })
    }

    /// Also rejects tokens whose session or id the IdP's revocation feed lists
    /// ([`ValidationError::Revoked`]), or every token while a fail-closed feed is stale
    /// ([`ValidationError::RevocationFeedUnavailable`]). Start the feed's background reads with
    /// [`RevocationFeed::spawn`].
    ///
    /// A signing key the feed announces as withdrawn is dropped from this validator's JWKS
    /// cache at once, and tokens it signed are rejected ([`ValidationError::KeyWithdrawn`]).
    pub fn with_revocation_feed(mut self, feed: RevocationFeed) -> Self {
        feed.keep_for_leeway(self.config.leeway);
        if let Keys::Remote(remote) = &*self.keys {
            feed.watch_keys(remote);
        }
        Arc::make_mut(&mut self.config).revocations = Some(feed);
        self
    }

    /// Clock-skew allowance applied to `exp`, `nbf` and `iat` (default 30 s; whole seconds,
    /// fractions are dropped).
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        if let Some(feed) = &self.config.revocations {
            feed.keep_for_leeway(leeway);
        }
        Arc::make_mut(&mut self.config).leeway = leeway;
        self
    }

    /// Rejects a token whose `iat` is further in the past than `max_age` plus the leeway:
    /// [`ValidationError::TooOld`] when `iat < now - leeway - max_age` (a token issued exactly
    /// `max_age + leeway` ago still passes). Whole seconds, fractions are dropped. Default:
    /// off.
    ///
    /// `exp` alone bounds how long a token is accepted only if the identity provider set it
    /// sensibly; this bounds it by the resource server's own rule too, e.g. against a token
    /// whose `exp` was written in milliseconds (tens of thousands of years away).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        Arc::make_mut(&mut self.config).max_age = Some(max_age);
        self
    }

    /// Rejects a token whose lifetime `exp - iat` exceeds `max_lifetime`:
    /// [`ValidationError::LifetimeTooLong`] when `exp - iat > max_lifetime` (a lifetime of
    /// exactly `max_lifetime` passes). No leeway applies, since both times come from the
    /// issuer's clock. Whole seconds, fractions are dropped. Default: off.
    ///
    /// Catches at once, rather than never, tokens minted with an `exp` in milliseconds or
    /// years away. Ostiary's access tokens live 5 minutes by default.
    pub fn with_max_lifetime(mut self, max_lifetime: Duration) -> Self {
        Arc::make_mut(&mut self.config).max_lifetime = Some(max_lifetime);
        self
    }

    /// The clock read by [`validate`](Self::validate) and by the remote JWKS cache (default
    /// [`SystemClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        Arc::make_mut(&mut self.config).clock = clock;
        self
    }

    /// Maximum length of a compact token, bytes (default 16 KiB). Longer tokens are rejected
    /// with [`ValidationError::TooLarge`] before any decoding.
    pub fn with_max_token_size(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).max_token_size = bytes;
        self
    }

    /// The `realm` announced in `WWW-Authenticate` by the axum extractor (RFC 6750 §3;
    /// default none). Characters outside printable ASCII are dropped.
    #[cfg(feature = "axum")]
    pub fn with_realm(mut self, realm: impl Into<String>) -> Self {
        let realm = realm
            .into()
            .chars()
            .filter(|c| matches!(c, ' '..='~'))
            .collect();
        Arc::make_mut(&mut self.config).realm = Some(realm);
        self
    }

    /// The public base URL of this resource server, e.g. `https://api.example.com` (or with a
    /// path prefix, `https://example.com/api`): the axum extractor checks a DPoP proof's `htu`
    /// against it followed by the request's path, never against a client-supplied `Host`.
    /// Without it the extractor accepts bearer tokens only.
    pub fn with_public_url(mut self, url: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.config).public_url =
            Some(url.into().trim_end_matches('/').to_owned());
        self
    }

    /// The base URL set by [`with_public_url`](Self::with_public_url), if any.
    pub fn public_url(&self) -> Option<&str> {
        self.config.public_url.as_deref()
    }

    /// Refuses bearer tokens: only DPoP-bound tokens, each with its proof, are accepted
    /// ([`ValidationError::DpopRequired`]). Needs [`with_public_url`](Self::with_public_url)
    /// for the axum extractor.
    pub fn with_dpop_required(mut self) -> Self {
        Arc::make_mut(&mut self.config).dpop_required = true;
        self
    }

    /// Whether [`with_dpop_required`](Self::with_dpop_required) was set.
    pub fn dpop_required(&self) -> bool {
        self.config.dpop_required
    }

    /// The algorithms DPoP proofs may be signed with (for `WWW-Authenticate: DPoP algs=…`).
    pub fn dpop_algorithms(&self) -> &[Algorithm] {
        &self.config.dpop.algorithms
    }

    /// The realm set by [`with_realm`](Self::with_realm), if any.
    #[cfg(feature = "axum")]
    pub fn realm(&self) -> Option<&str> {
        self.config.realm.as_deref()
    }

    /// The issuer tokens must carry in `iss`.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// The audience tokens must list in `aud`.
    pub fn audience(&self) -> &str {
        &self.config.audience
    }

    /// Fetches a remote JWKS now (if not cached), e.g. at start-up, so the first request does
    /// not wait for it. Does nothing for a static JWKS.
    ///
    /// # Errors
    /// [`ValidationError::JwksUnavailable`] if the fetch failed and there are no keys.
    pub async fn prefetch(&self) -> Result<(), ValidationError> {
        match &*self.keys {
            Keys::Static(_) => Ok(()),
            Keys::Remote(remote) => remote.keys(&*self.config.clock).await.map(drop),
        }
    }

    /// Validates `token` (the compact JWT, without the `Bearer ` prefix) at the time of the
    /// configured [`Clock`].
    ///
    /// # Errors
    /// The first failed check, as a [`ValidationError`]; see the crate docs for the order.
    ///
    /// This is the bearer path (RFC 6750): a token bound to a DPoP key is refused
    /// ([`ValidationError::DpopBound`]); see [`validate_dpop`](Self::validate_dpop).
    pub async fn validate(&self, token: &str) -> Result<AccessTokenClaims, ValidationError> {
        self.validate_at(token, self.config.clock.now_unix()).await
    }

    /// Validates a DPoP-bound `token` (from `Authorization: DPoP <token>`) with the request's
    /// `DPoP` header `proof` (RFC 9449 §7): the token as [`validate`](Self::validate) does,
    /// then the proof for `request` (signature with its own key, `htm`, `htu`, `iat` within
    /// the window of [`with_dpop_policy`](Self::with_dpop_policy), `ath` the token's hash),
    /// the proof's key thumbprint equal to the token's `cnf.jkt`, its `nonce` fresh if
    /// [`with_dpop_nonces`](Self::with_dpop_nonces) was set, and its `jti` not seen before
    /// within the window by the [`ReplayStore`] (see [`crate::dpop`]). Returns the claims;
    /// [`AccessTokenClaims::dpop_jkt`] is the key's thumbprint.
    ///
    /// # Errors
    /// The token's first failed check; then [`ValidationError::InvalidDpopProof`],
    /// [`ValidationError::DpopKeyMismatch`] (a token not bound, or bound to another key),
    /// [`ValidationError::UseDpopNonce`], [`ValidationError::DpopReplayCacheFull`] or
    /// [`ValidationError::DpopReplayStoreUnavailable`].
    pub async fn validate_dpop(
        &self,
        token: &str,
        proof: &str,
        request: &DpopRequest<'_>,
    ) -> Result<AccessTokenClaims, ValidationError> {
        self.validate_dpop_at(token, proof, request, self.config.clock.now_unix())
            .await
    }

    /// [`validate_dpop`](Self::validate_dpop) as if the time were `now_unix_seconds`, for the
    /// token's claims and the proof's `iat` alike.
    ///
    /// # Errors
    /// As [`validate_dpop`](Self::validate_dpop).
    pub async fn validate_dpop_at(
        &self,
        token: &str,
        proof: &str,
        request: &DpopRequest<'_>,
        now_unix_seconds: i64,
    ) -> Result<AccessTokenClaims, ValidationError> {
        let now = now_unix_seconds;
        let result = self.check_dpop(token, proof, request, now).await;
        if let Err(error) = &result {
            tracing::debug!(reason = error.reason(), "DPoP-bound access token rejected");
        }
        result
    }

    async fn check_dpop(
        &self,
        token: &str,
        proof: &str,
        request: &DpopRequest<'_>,
        now: i64,
    ) -> Result<AccessTokenClaims, ValidationError> {
        let claims = self.check_token(token, now).await?;
        let checked = ostiary_jose::dpop::verify_proof(
            proof,
            &ostiary_jose::dpop::ProofRequest {
                method: request.method,
                url: request.url,
                access_token: Some(token),
            },
            &self.config.dpop,
            u64::try_from(now).unwrap_or(0),
        )
        .map_err(ValidationError::InvalidDpopProof)?;
        if claims.dpop_jkt() != Some(checked.jkt.as_str()) {
            return Err(ValidationError::DpopKeyMismatch);
        }
        if let Some(key) = &self.config.nonces
            && !checked
                .nonce
                .as_deref()
                .is_some_and(|nonce| NonceKey::is_fresh([key.as_ref()], nonce, now))
        {
            return Err(ValidationError::UseDpopNonce);
        }
        let until =
            i64::try_from(self.config.dpop.acceptable_until(checked.iat)).unwrap_or(i64::MAX);
        let proof = ProofId::new(&checked.jkt, &checked.jti);
        match self.config.replays.record(&proof, until, now).await {
            Ok(Seen::New) => Ok(claims),
            Ok(Seen::Replayed) => Err(ValidationError::InvalidDpopProof(ProofError::Replayed)),
            Err(ReplayStoreError::Full) => Err(ValidationError::DpopReplayCacheFull),
            Err(ReplayStoreError::Unavailable(why)) => {
                tracing::warn!(error = %why, "DPoP replay store unavailable: proof refused");
                Err(ValidationError::DpopReplayStoreUnavailable)
            }
        }
    }

    /// Remembers accepted DPoP proofs in `store` instead of this validator's own bounded
    /// memory ([`MemoryReplayStore`]): give every replica behind one public URL the same
    /// shared store (e.g. [`RedisReplayStore`](crate::dpop::RedisReplayStore), feature
    /// `redis`) and a proof replayed to another replica is caught too.
    #[must_use]
    pub fn with_replay_store(mut self, store: Arc<dyn ReplayStore>) -> Self {
        Arc::make_mut(&mut self.config).replays = store;
        self
    }

    /// Asks every DPoP proof for a fresh nonce from this resource server (RFC 9449 §9): a
    /// proof without one, or with a stale or foreign one, is refused with
    /// [`ValidationError::UseDpopNonce`], and the axum extractor and layer answer it with
    /// `WWW-Authenticate: DPoP error="use_dpop_nonce"` and the nonce in `DPoP-Nonce` (the
    /// layer also puts the current nonce on every response to a DPoP request). Nonces are
    /// made from `secret` without state (see [`ostiary_jose::dpop::nonce`]): replicas given
    /// the same secret accept each other's. A nonce lives 1–2 minutes.
    ///
    /// # Errors
    /// [`ConfigError::ShortNonceSecret`] if `secret` is shorter than 32 bytes.
    pub fn with_dpop_nonces(mut self, secret: &[u8]) -> Result<Self, ConfigError> {
        let key = NonceKey::derive(secret, b"ostiary-verify dpop-nonce v1")
            .map_err(|_| ConfigError::ShortNonceSecret)?;
        Arc::make_mut(&mut self.config).nonces = Some(Arc::new(key));
        Ok(self)
    }

    /// The DPoP nonce to hand out now (for a `DPoP-Nonce` response header), if
    /// [`with_dpop_nonces`](Self::with_dpop_nonces) was set.
    pub fn dpop_nonce(&self) -> Option<String> {
        self.dpop_nonce_at(self.config.clock.now_unix())
    }

    /// [`dpop_nonce`](Self::dpop_nonce) as if the time were `now_unix_seconds`.
    pub fn dpop_nonce_at(&self, now_unix_seconds: i64) -> Option<String> {
        let key = self.config.nonces.as_ref()?;
        Some(key.nonce(now_unix_seconds))
    }

    /// The algorithms DPoP proofs may use and their `iat` window (default
    /// [`ProofPolicy::default`]: ES256, EdDSA, ES384, PS256, RS256; 60 s old, 5 s ahead).
    #[must_use]
    pub fn with_dpop_policy(mut self, policy: ProofPolicy) -> Self {
        Arc::make_mut(&mut self.config).dpop = policy;
        self
    }

    /// Validates `token` as if the time were `now_unix_seconds` (seconds since the Unix epoch)
    /// for the claim checks. The remote JWKS cache still follows the configured [`Clock`].
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub async fn validate_at(
        &self,
        token: &str,
        now_unix_seconds: i64,
    ) -> Result<AccessTokenClaims, ValidationError> {
        let result = self.check(token, now_unix_seconds).await;
        if let Err(error) = &result {
            tracing::debug!(reason = error.reason(), "access token rejected");
        }
        result
    }

    async fn check(&self, token: &str, now: i64) -> Result<AccessTokenClaims, ValidationError> {
        let claims = self.check_token(token, now).await?;
        if claims.extra.contains_key("cnf") {
            return Err(ValidationError::DpopBound);
        }
        if self.config.dpop_required {
            return Err(ValidationError::DpopRequired);
        }
        Ok(claims)
    }

    /// Every check of the token itself, whichever way it was presented.
    async fn check_token(
        &self,
        token: &str,
        now: i64,
    ) -> Result<AccessTokenClaims, ValidationError> {
        if token.len() > self.config.max_token_size {
            return Err(ValidationError::TooLarge);
        }
        let token = CompactToken::parse(token)?;
        let header = check_header(&token.header, &self.config.algorithms)?;
        if let (Some(feed), Some(kid)) = (&self.config.revocations, header.kid.as_deref())
            && feed.is_key_withdrawn(kid, now).await
        {
            return Err(ValidationError::KeyWithdrawn);
        }
        self.verify_signature(&token, &header).await?;
        let claims = AccessTokenClaims::from_payload(&token.payload)?;
        self.check_claims(&claims, now)?;
        if let Some(feed) = &self.config.revocations {
            feed.check(claims.sid.as_deref(), &claims.jti, now).await?;
        }
        Ok(claims)
    }

    async fn verify_signature(
        &self,
        token: &CompactToken<'_>,
        header: &CheckedHeader,
    ) -> Result<(), ValidationError> {
        match &*self.keys {
            Keys::Static(keys) => verify_with(keys, token, header),
            Keys::Remote(remote) => {
                let clock = &*self.config.clock;
                let snapshot = remote.keys(clock).await?;
                match verify_with(&snapshot.keys, token, header) {
                    // Perhaps the identity provider rotated its keys: look once more.
                    Err(ValidationError::UnknownKey) => {
                        match remote
                            .refetch_for_unknown_kid(clock, snapshot.generation)
                            .await
                        {
                            Some(newer) => verify_with(&newer, token, header),
                            None => Err(ValidationError::UnknownKey),
                        }
                    }
                    other => other,
                }
            }
        }
    }

    fn check_claims(&self, claims: &AccessTokenClaims, now: i64) -> Result<(), ValidationError> {
        let config = &self.config;
        let leeway = seconds(config.leeway);
        if claims.iss != config.issuer {
            return Err(ValidationError::WrongIssuer);
        }
        if !claims.aud.iter().any(|aud| *aud == config.audience) {
            return Err(ValidationError::WrongAudience);
        }
        if claims.exp <= now.saturating_sub(leeway) {
            return Err(ValidationError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(leeway))
        {
            return Err(ValidationError::NotYetValid("nbf"));
        }
        if claims.iat > now.saturating_add(leeway) {
            return Err(ValidationError::NotYetValid("iat"));
        }
        if let Some(max_age) = config.max_age
            && claims.iat < now.saturating_sub(leeway).saturating_sub(seconds(max_age))
        {
            return Err(ValidationError::TooOld);
        }
        if let Some(max_lifetime) = config.max_lifetime
            && claims.exp.saturating_sub(claims.iat) > seconds(max_lifetime)
        {
            return Err(ValidationError::LifetimeTooLong);
        }
        Ok(())
    }
}

/// Whole seconds of `duration`, saturating at `i64::MAX`.
fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// Verifies the signature with the key(s) the JWKS offers for this header.
fn verify_with(
    keys: &KeySet,
    token: &CompactToken<'_>,
    header: &CheckedHeader,
) -> Result<(), ValidationError> {
    let candidates = match keys.select(header.kid.as_deref(), header.alg) {
        Selection::Candidates(candidates) => candidates,
        Selection::Unknown => return Err(ValidationError::UnknownKey),
        Selection::Mismatch => return Err(ValidationError::KeyMismatch),
    };
    let message = token.signing_input.as_bytes();
    for key in candidates {
        let verified = match &key.ecdsa {
            Some(parsed) => Ok(parsed.verify_sig(message, &token.signature_bytes).is_ok()),
            None => {
                jsonwebtoken::crypto::verify(token.signature, message, &key.decoding, header.alg)
            }
        };
        match verified {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            // The key could not be loaded for this algorithm (e.g. a malformed modulus):
            // as good as a wrong signature.
            Err(error) => tracing::debug!(%error, "signature verification error"),
        }
    }
    Err(ValidationError::BadSignature)
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let config = &self.config;
        let mut debug = f.debug_struct("Validator");
        debug
            .field("issuer", &config.issuer)
            .field("audience", &config.audience)
            .field("algorithms", &config.algorithms)
            .field("leeway", &config.leeway)
            .field("max_age", &config.max_age)
            .field("max_lifetime", &config.max_lifetime)
            .field("max_token_size", &config.max_token_size)
            .field("clock", &config.clock);
        match &*self.keys {
            Keys::Static(keys) => {
                debug.field("jwks", &format_args!("static ({} keys)", keys.len()))
            }
            Keys::Remote(remote) => debug.field("jwks", &format_args!("remote ({})", remote.url())),
        };
        debug.finish_non_exhaustive()
    }
}
