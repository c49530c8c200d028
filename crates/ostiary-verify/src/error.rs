//! The two error types: [`ConfigError`] when a [`Validator`](crate::Validator) is built,
//! [`ValidationError`] when a token is rejected.
//!
//! No error ever carries text copied from the token (not even the `kid` or `alg` strings):
//! messages are fixed phrases, safe to put in a `WWW-Authenticate` header or a log line.

use jsonwebtoken::Algorithm;

/// Why an access token was rejected.
///
/// [`reason`](Self::reason) gives a stable snake_case code for metrics, logs and response
/// bodies; the `Display` text is a short English phrase that never quotes the token. Only
/// [`JwksUnavailable`](Self::JwksUnavailable) is not the client's fault.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The compact token is longer than the configured limit (default 16 KiB); rejected before
    /// any parsing.
    #[error("the token is too large")]
    TooLarge,
    /// Not three base64url (unpadded) parts, or a header/payload that is not a JSON object,
    /// or one that repeats a member name in any of its objects (RFC 7515 §5.2, RFC 7519 §7.2).
    #[error("the token is malformed")]
    Malformed,
    /// The header's `alg` is `none`, an HMAC algorithm, unknown, or not in the allow-list.
    #[error("the token's signing algorithm is not allowed")]
    AlgorithmNotAllowed,
    /// The header has a `crit` parameter; no JWS extension is understood (RFC 7515 §4.1.11).
    #[error("the token uses critical header extensions that are not supported")]
    UnsupportedCrit,
    /// The header has a member that changes how the token is to be processed and that the
    /// validator does not implement: `b64` (RFC 7797, any value), `zip` (compressed payload,
    /// RFC 7516 §4.1.3) or `enc` (a JWE, RFC 7516 §4.1.2). Refused with or without `crit`.
    #[error("the token uses header parameters that are not supported")]
    UnsupportedHeader,
    /// The header's `typ` is missing or is not `at+jwt` (RFC 9068 §4).
    #[error("the token is not a JWT access token")]
    WrongType,
    /// No key of the JWKS has the token's `kid` (after at most one refetch), or, for a token
    /// without `kid`, no key fits its algorithm.
    #[error("the token was signed with an unknown key")]
    UnknownKey,
    /// The key named by `kid` cannot be used with the token's `alg` (key type, curve or the
    /// key's own `alg` differ).
    #[error("the token's algorithm does not match its key")]
    KeyMismatch,
    /// The signature does not verify with the selected key.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// A required claim is absent. The field is the claim name.
    #[error("the token lacks the {0} claim")]
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type or an out-of-range value. The field is the claim name.
    #[error("the token's {0} claim is invalid")]
    InvalidClaim(&'static str),
    /// `iss` is not exactly the configured issuer.
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("the token is meant for another audience")]
    WrongAudience,
    /// `exp` is in the past, beyond the leeway.
    #[error("the token has expired")]
    Expired,
    /// `nbf` or `iat` is in the future, beyond the leeway. The field is the claim name.
    #[error("the token is not valid yet ({0} is in the future)")]
    NotYetValid(&'static str),
    /// `iat` is further in the past than the maximum age plus the leeway. Only with
    /// [`Validator::with_max_age`](crate::Validator::with_max_age).
    #[error("the token was issued too long ago")]
    TooOld,
    /// `exp - iat` exceeds the maximum lifetime. Only with
    /// [`Validator::with_max_lifetime`](crate::Validator::with_max_lifetime).
    #[error("the token's lifetime is too long")]
    LifetimeTooLong,
    /// The JWKS could not be fetched and no keys were ever obtained. A server-side outage,
    /// not the client's fault (HTTP 503 rather than 401).
    #[error("the signing keys are unavailable")]
    JwksUnavailable,
    /// The token's session (`sid`) ended, or the token itself (`jti`) was revoked, as the
    /// identity provider's revocation feed says.
    #[error("the token has been revoked")]
    Revoked,
    /// The key that signed the token was withdrawn by the identity provider (an emergency
    /// rotation after a compromise), as its revocation feed says: whoever holds that key can
    /// mint tokens with any claims, so none it signed is trusted, whatever its `exp`.
    #[error("the token's signing key has been withdrawn")]
    KeyWithdrawn,
    /// Fail-closed mode only: the revocation feed has not been read successfully for longer
    /// than allowed, so no token can be trusted not to be revoked. A server-side outage (503).
    #[error("the revocation feed is unavailable")]
    RevocationFeedUnavailable,
    /// The token is bound to a DPoP key (`cnf.jkt`) but was presented as a bearer token
    /// (RFC 9449 §7.2): it needs the `DPoP` scheme and a proof.
    #[error("the token is bound to a DPoP key: present it with a DPoP proof")]
    DpopBound,
    /// Presented with a DPoP proof, but the token is not bound to a key, or to another one
    /// than the proof's.
    #[error("the token is not bound to the DPoP proof's key")]
    DpopKeyMismatch,
    /// A bearer token, where the validator accepts only DPoP-bound tokens
    /// ([`Validator::with_dpop_required`](crate::Validator::with_dpop_required)).
    #[error("this resource accepts only DPoP-bound tokens")]
    DpopRequired,
    /// A DPoP-bound token presented to an extractor whose validator has no public URL
    /// ([`Validator::with_public_url`](crate::Validator::with_public_url)) to check proofs
    /// against.
    #[error("this resource accepts no DPoP-bound tokens")]
    DpopUnsupported,
    /// The DPoP proof failed a check (RFC 9449 §4.3), or was seen before within its window.
    /// The field says which check; answered as `invalid_dpop_proof` (§7.1).
    #[error("{0}")]
    InvalidDpopProof(ostiary_jose::dpop::ProofError),
    /// The replay cache holds as many live proofs as it may: the proof is refused rather
    /// than a live one forgotten. A server-side condition (503).
    #[error("too many DPoP proofs in flight; try again")]
    DpopReplayCacheFull,
    /// The shared replay store ([`Validator::with_replay_store`](crate::Validator::with_replay_store))
    /// could not say whether the proof was used before: refused (fail closed), as a
    /// server-side condition (503).
    #[error("the DPoP replay store is unavailable; try again")]
    DpopReplayStoreUnavailable,
    /// The validator asks for resource-server nonces
    /// ([`Validator::with_dpop_nonces`](crate::Validator::with_dpop_nonces)) and the proof
    /// carries none, or one that is not fresh (RFC 9449 §9): answered `use_dpop_nonce` with
    /// the nonce to use in a `DPoP-Nonce` header.
    #[error("the DPoP proof needs a fresh nonce from this resource server")]
    UseDpopNonce,
}

impl ValidationError {
    /// Whether the failure is the server's (keys or revocation feed unreachable) rather than
    /// the token's: answer 503, not 401.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::JwksUnavailable
                | Self::RevocationFeedUnavailable
                | Self::DpopReplayCacheFull
                | Self::DpopReplayStoreUnavailable
        )
    }

    /// A stable machine-readable code in snake_case, e.g. `"expired"` or `"bad_signature"`.
    ///
    /// Codes: `too_large`, `malformed`, `algorithm_not_allowed`, `unsupported_crit`,
    /// `unsupported_header`, `wrong_type`, `unknown_key`, `key_mismatch`, `bad_signature`,
    /// `missing_claim`, `invalid_claim`, `wrong_issuer`, `wrong_audience`, `expired`,
    /// `not_yet_valid`, `too_old`, `lifetime_too_long`, `jwks_unavailable`, `revoked`,
    /// `key_withdrawn`, `revocation_feed_unavailable`, `dpop_bound`, `dpop_key_mismatch`,
    /// `dpop_required`, `dpop_unsupported`, `invalid_dpop_proof`, `dpop_replay_cache_full`,
    /// `dpop_replay_store_unavailable`, `use_dpop_nonce`. A code, once given, keeps its meaning;
    /// new checks get new codes.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::Malformed => "malformed",
            Self::AlgorithmNotAllowed => "algorithm_not_allowed",
            Self::UnsupportedCrit => "unsupported_crit",
            Self::UnsupportedHeader => "unsupported_header",
            Self::WrongType => "wrong_type",
            Self::UnknownKey => "unknown_key",
            Self::KeyMismatch => "key_mismatch",
            Self::BadSignature => "bad_signature",
            Self::MissingClaim(_) => "missing_claim",
            Self::InvalidClaim(_) => "invalid_claim",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::Expired => "expired",
            Self::NotYetValid(_) => "not_yet_valid",
            Self::TooOld => "too_old",
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::JwksUnavailable => "jwks_unavailable",
            Self::Revoked => "revoked",
            Self::KeyWithdrawn => "key_withdrawn",
            Self::RevocationFeedUnavailable => "revocation_feed_unavailable",
            Self::DpopBound => "dpop_bound",
            Self::DpopKeyMismatch => "dpop_key_mismatch",
            Self::DpopRequired => "dpop_required",
            Self::DpopUnsupported => "dpop_unsupported",
            Self::InvalidDpopProof(_) => "invalid_dpop_proof",
            Self::DpopReplayCacheFull => "dpop_replay_cache_full",
            Self::DpopReplayStoreUnavailable => "dpop_replay_store_unavailable",
            Self::UseDpopNonce => "use_dpop_nonce",
        }
    }
}

/// Why a [`Validator`](crate::Validator) or a [`JwksSource`](crate::JwksSource) could not be
/// built. These are start-up errors: fail fast and fix the configuration.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The issuer is empty.
    #[error("the issuer must not be empty")]
    EmptyIssuer,
    /// The audience is empty.
    #[error("the audience must not be empty")]
    EmptyAudience,
    /// The algorithm allow-list is empty.
    #[error("at least one signing algorithm must be allowed")]
    NoAlgorithms,
    /// The allow-list contains an HMAC algorithm. A resource server verifies with public keys
    /// only; accepting HS256 & co. opens the door to algorithm-confusion attacks.
    #[error("{0:?} is a symmetric algorithm and is never accepted")]
    SymmetricAlgorithm(Algorithm),
    /// The JWKS document is not a JSON object with a `keys` array.
    #[error("invalid JWKS document: {0}")]
    InvalidJwks(#[source] serde_json::Error),
    /// The JWKS file could not be read.
    #[error("cannot read the JWKS file {path}: {source}")]
    ReadJwks {
        /// The file that was read.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A static JWKS has no key usable with any allowed algorithm (keys with `use` other than
    /// `sig`, symmetric keys and unsupported curves are ignored).
    #[error("the JWKS has no key usable with the allowed algorithms")]
    NoUsableKeys,
    /// The JWKS URL does not parse.
    #[error("invalid JWKS URL: {0}")]
    InvalidJwksUrl(String),
    /// The JWKS URL is plain `http` to a host other than a loopback address.
    #[error("the JWKS URL must use https (plain http is allowed for loopback hosts only)")]
    InsecureJwksUrl,
    /// The revocation feed URL is not an absolute http(s) URL, or is plain http to a host
    /// that is not loopback.
    #[error("the revocation feed URL must be https (or http to a loopback host)")]
    InvalidFeedUrl,
    /// The HTTP client could not be built (TLS initialisation).
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// `jsonwebtoken` has no usable crypto provider: exactly one of its `aws_lc_rs` and
    /// `rust_crypto` features must be enabled in the final build (see FACTS.md).
    #[error("jsonwebtoken has no crypto provider (enable exactly one of aws_lc_rs, rust_crypto)")]
    NoCryptoProvider,
    /// The DPoP nonce secret is shorter than
    /// [`MIN_SECRET_LEN`](ostiary_jose::dpop::nonce::MIN_SECRET_LEN) (32 bytes).
    #[error("the DPoP nonce secret needs at least 32 bytes")]
    ShortNonceSecret,
    /// The shared DPoP replay store could not be set up (its URL, or the first connection).
    #[error("cannot set up the DPoP replay store: {0}")]
    ReplayStore(String),
}
