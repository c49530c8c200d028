//! Validate OAuth 2.0 JWT access tokens (RFC 9068) in a resource server.
//!
//! A [`Validator`] is built once with the three things that must never be left out, the
//! **issuer**, the **audience** and the **algorithm allow-list**, plus where the identity
//! provider's public keys come from ([`JwksSource`]). Each request's bearer token then goes
//! through [`Validator::validate`], which returns the [`AccessTokenClaims`] or a
//! [`ValidationError`] with a stable [`reason`](ValidationError::reason) code. With the
//! default `axum` feature, the [`extract::VerifiedClaims`] extractor does this for handlers
//! and answers failures as RFC 6750 §3 prescribes.
//!
//! ```no_run
//! use ostiary_verify::{Algorithm, JwksSource, Validator};
//!
//! # async fn run(token: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let validator = Validator::new(
//!     "https://id.example",
//!     "https://api.example",
//!     &[Algorithm::EdDSA, Algorithm::ES256],
//!     JwksSource::remote("https://id.example/jwks.json"),
//! )?;
//! let claims = validator.validate(token).await?;
//! println!("{} via {} may {:?}", claims.sub, claims.client_id, claims.scope);
//! # Ok(())
//! # }
//! ```
//!
//! # What is checked, in order
//!
//! 1. Length at most 16 KiB ([`Validator::with_max_token_size`]), before any parsing
//!    (`too_large`); exactly three unpadded base64url parts, a header JSON object
//!    (`malformed`).
//! 2. The header, parsed here rather than by `jsonwebtoken`: no member name repeated, at any
//!    depth (`malformed`); `alg` in the allow-list, never `none` nor HMAC
//!    (`algorithm_not_allowed`); no `crit` at all (`unsupported_crit`); no `b64` (RFC 7797,
//!    any value), `zip` or `enc` (JWE), which would change what the signature covers or how
//!    the payload is read (`unsupported_header`); `typ` `at+jwt` or `application/at+jwt`,
//!    case-insensitive (`wrong_type`). `jwk`, `jku`, `x5u` and `x5c` are never read: keys
//!    come from the configured JWKS only.
//! 3. The key: the JWK whose `kid` equals the token's; its own type and curve decide which
//!    algorithms it verifies (RSA → RS*/PS*, P-256 → ES256, P-384 → ES384, Ed25519 → EdDSA),
//!    and its `alg`, if present, must equal the token's (`key_mismatch`). Keys with a `use`
//!    other than `sig`, symmetric keys and unsupported curves are ignored. A token **without
//!    `kid`** is tried against the first three keys that fit its algorithm; an identity
//!    provider with more keys than that must send `kid` (Ostiary does). Unknown `kid`:
//!    `unknown_key`. With a [`RevocationFeed`], a `kid` the identity provider withdrew (an
//!    emergency rotation after a compromise) is `key_withdrawn`, whatever the cache holds: the
//!    feed drops such a key from the cache at once and the next validation refetches the
//!    JWKS.
//! 4. The signature (`bad_signature`), before any claim is looked at.
//! 5. The payload, a JSON object with no member name repeated at any depth (`malformed`).
//!    The claims, strictly typed (`missing_claim`, `invalid_claim`): `iss`, `sub`, `aud`
//!    (string or array), `exp`, `iat`, `jti`, `client_id` required; `nbf`, `scope`, `sid`,
//!    `auth_time` optional. Then `iss` equals the issuer byte for byte (`wrong_issuer`), `aud`
//!    contains the audience (`wrong_audience`), and with the leeway (default 30 s):
//!    `exp <= now - leeway` is `expired`, `nbf > now + leeway` or `iat > now + leeway` is
//!    `not_yet_valid`. NumericDates with a fraction are floored.
//! 6. Optional, off by default: with [`Validator::with_max_age`], `iat` further in the past
//!    than the maximum age plus the leeway is `too_old`; with [`Validator::with_max_lifetime`],
//!    `exp - iat` above the maximum lifetime is `lifetime_too_long`. Both catch tokens whose
//!    `exp` is in milliseconds or years away.
//! 7. With a [`RevocationFeed`] ([`Validator::with_revocation_feed`]): `sid` or `jti`
//!    revoked (`revoked`), or a fail-closed feed too stale (`revocation_feed_unavailable`).
//!
//! # Remote JWKS
//!
//! [`JwksSource::Remote`] keys are fetched on first use (or by [`Validator::prefetch`]) over
//! HTTPS (plain http for loopback hosts only), with a 5 s timeout, a 256 KiB size limit and
//! no redirects. Then, all times read from the injected [`Clock`]:
//!
//! - they are fresh for the response's `Cache-Control: max-age`, clamped to [60 s, 24 h]
//!   (5 min when absent; `no-cache`/`no-store` count as 60 s);
//! - one fetch is in flight at a time: validations with no keys wait for it, validations with
//!   stale keys use those meanwhile;
//! - a token with an unknown `kid` triggers at most one refetch, and such refetches happen at
//!   most once per 30 s, so a flood of random `kid`s cannot hammer the identity provider;
//! - when a refresh fails (error status, timeout, not a JWKS, no usable key) the stale keys
//!   stay in use, with a warning in the log, and no new attempt is made for 10 s;
//!   `jwks_unavailable` is returned only when no key was ever fetched.
//!
//! Errors never contain text from the token, and `Debug` never prints keys.
//!
//! # Layout
//!
//! - [`validator`]: [`Validator`], the order of checks and the claim rules.
//! - `token`: splitting the compact serialization and checking the protected header.
//! - [`jwks`]: [`JwksSource`], vetting JWKs and choosing the key for a token.
//! - [`revocation`]: [`RevocationFeed`], following the IdP's revocation feed (bounded memory,
//!   fail-open or fail-closed).
//! - `cache`: the remote JWKS cache (TTL, single flight, refetch rate limit, stale keys).
//! - [`claims`]: [`AccessTokenClaims`] and their strict parsing.
//! - [`dpop`]: DPoP-bound tokens (RFC 9449 §7): [`Validator::validate_dpop`], the replay
//!   store (in memory, or shared by replicas: [`dpop::ReplayStore`], Redis with feature
//!   `redis`), resource-server nonces; a bound token is never accepted as a bearer token.
//! - [`clock`]: [`Clock`] and [`SystemClock`]; time is an input.
//! - [`error`]: [`ValidationError`] and [`ConfigError`].
//! - [`extract`] (feature `axum`): the [`extract::VerifiedClaims`] extractor.
//! - [`layer`] (feature `axum`): [`layer::VerifyLayer`], the same checks as a tower layer.

mod cache;
pub mod claims;
pub mod clock;
pub mod dpop;
pub mod error;
#[cfg(feature = "axum")]
pub mod extract;
pub mod jwks;
#[cfg(feature = "axum")]
pub mod layer;
pub mod revocation;
mod token;
pub mod validator;

pub use claims::AccessTokenClaims;
pub use clock::{Clock, SystemClock};
pub use dpop::DpopRequest;
pub use error::{ConfigError, ValidationError};
pub use jsonwebtoken::Algorithm;
/// The JWK Set type a [`JwksSource::Static`] holds (from `jsonwebtoken`).
pub use jsonwebtoken::jwk::JwkSet;
pub use jwks::JwksSource;
pub use revocation::{FailMode, RevocationFeed};
pub use validator::{DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_SIZE, Validator};
