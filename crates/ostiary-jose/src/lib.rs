//! The JOSE pieces that Ostiary's identity provider (`ostiary-core`) and its resource-server
//! library (`ostiary-verify`) both need, written once:
//!
//! - [`strict_json`]: JSON objects without repeated member names, for every JOSE header and
//!   claims set Ostiary reads.
//! - [`KeyKind`]: which algorithms a public JWK verifies, judged from the key alone.
//! - [`dpop`]: DPoP proofs (RFC 9449 §4): [`dpop::verify_proof`], the RFC 7638 thumbprint
//!   that binds tokens to a key, the access-token hash `ath`, and stateless server nonces
//!   ([`dpop::nonce`], §8 and §9).
//!
//! No HTTP and no storage: callers pass the request's method and URL, and keep the state
//! (seen `jti`s, the nonce secret) themselves.

pub mod dpop;
mod key_kind;
pub mod strict_json;

pub use key_kind::KeyKind;
