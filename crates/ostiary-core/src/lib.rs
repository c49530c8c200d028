//! The domain of Ostiary, an OAuth 2.0 / OpenID Connect identity provider.
//!
//! This crate knows what users, clients, sessions, refresh families, signing keys and
//! tokens are, and implements the use cases on them (log in, authorize, exchange a code,
//! refresh, revoke, end a session). It knows nothing of HTTP or SQL: the HTTP adapter
//! (`ostiary-server`) calls [`Idp`], and the storage adapter (`ostiary-store`) implements
//! [`Store`].
//!
//! # Layout
//! - [`audit`]: the audit log's events and filters.
//! - [`clock`]: the injected clock; every expiry decision takes `now` from it.
//! - [`secret`]: types for secrets (passwords, credentials, client secrets) with redacted
//!   `Debug`, random generation and SHA-256 hashing of high-entropy credentials.
//! - [`user`]: usernames, users, Argon2id password hashing on a bounded blocking pool.
//! - [`client`]: OAuth clients, client ids, redirect URIs and their matching rules.
//! - [`scope`]: scopes and resource indicators (RFC 8707).
//! - [`session`]: IdP sessions (the `sid`), their idle/absolute lifetimes and the policy.
//! - [`refresh`]: the refresh-token state machine (rotation, grace-window replay, theft).
//! - [`code`]: authorization codes and PKCE (RFC 7636, S256 only).
//! - [`keys`]: signing keys (ES256, EdDSA, RS256), their lifecycle, JWKS publication.
//! - [`signing`]: the signing keys' use cases: maintenance on every instance, rotation, the
//!   emergency rotation that withdraws a compromised key everywhere within seconds.
//! - [`token`]: minting access tokens (RFC 9068) and ID tokens (OIDC Core), and verifying
//!   our own tokens where the IdP itself consumes them (userinfo, revocation, logout hints).
//! - [`store`]: the [`Store`] trait the use cases need, and its error type.
//! - [`throttle`]: brute-force protection for the login form.
//! - [`retention`]: how long records are kept; the job that ends expired sessions and
//!   deletes what no longer matters.
//! - [`idp`]: [`Idp`], the use cases, and [`IdpError`]; the sign-in use case is in `login`,
//!   the token endpoint's grants and revocation in `grants`.

mod administration;
pub mod audit;
mod authorization;
mod backchannel;
pub mod client;
pub mod client_cache;
pub mod clock;
pub mod code;
pub mod dpop;
mod feed;
mod grants;
pub mod hashing;
pub mod idp;
pub mod keys;
mod login;
mod own_tokens;
pub mod refresh;
pub mod retention;
pub mod scope;
pub mod secret;
pub mod session;
mod sessions;
pub mod signing;
pub mod store;
pub mod throttle;
pub mod token;
pub mod user;

pub use idp::{Idp, IdpConfig, IdpError};
pub use store::{Store, StoreError};
