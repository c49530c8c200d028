//! DPoP-bound access tokens at the resource server (RFC 9449 §7).
//!
//! A token whose claims carry `cnf.jkt` is bound to a key: it is accepted only through
//! [`Validator::validate_dpop`](crate::Validator::validate_dpop), with the request's `DPoP`
//! proof, and never as a bearer token ([`Validator::validate`](crate::Validator::validate)
//! answers [`ValidationError::DpopBound`](crate::ValidationError::DpopBound), §7.2). The proof
//! is checked by [`ostiary_jose::dpop::verify_proof`] against the request's method and URL
//! (the URL the resource server is reached at publicly, built from its configuration, never
//! from a client-supplied `Host`), with `ath` the token's hash; its key's thumbprint must be
//! the token's `cnf.jkt`; and its `jti` must not have been seen within the proof window
//! (§11.1), which a [`ReplayStore`] remembers:
//!
//! - by default a bounded [`MemoryReplayStore`] per [`Validator`](crate::Validator), shared by
//!   its clones: several replicas behind one URL then each keep their own, and a proof
//!   replayed to another replica within the window is not caught;
//! - for several replicas, one store they share:
//!   [`Validator::with_replay_store`](crate::Validator::with_replay_store) with
//!   [`RedisReplayStore`] (feature `redis`) or an implementation of the trait of your own.
//!
//! Resource-server nonces (§9) are optional:
//! [`Validator::with_dpop_nonces`](crate::Validator::with_dpop_nonces) makes every proof carry
//! a fresh nonce from the resource server ([`ValidationError::UseDpopNonce`](crate::ValidationError::UseDpopNonce)
//! otherwise, answered with the nonce to use), made statelessly from a secret the replicas
//! share ([`ostiary_jose::dpop::nonce`]).

#[cfg(feature = "redis")]
mod redis;

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::digest;

pub use ostiary_jose::dpop::{ProofError, ProofPolicy};

#[cfg(feature = "redis")]
pub use self::redis::RedisReplayStore;

/// How many proofs the in-memory replay cache remembers at most (default). Beyond it,
/// expired entries are dropped first; if none has expired, a new proof is refused
/// ([`ValidationError::DpopReplayCacheFull`](crate::ValidationError::DpopReplayCacheFull)):
/// failing closed, never forgetting a live one.
pub const DEFAULT_REPLAY_CACHE_CAPACITY: usize = 100_000;

/// The request a DPoP proof came with.
#[derive(Debug, Clone, Copy)]
pub struct DpopRequest<'a> {
    /// The HTTP method, e.g. `GET` (compared exactly with the proof's `htm`).
    pub method: &'a str,
    /// The request's absolute URL as the client addressed it: the resource server's
    /// configured public base URL and the request path (query and fragment are ignored).
    pub url: &'a str,
}

/// One accepted proof, as a replay store keys it: the key's RFC 7638 thumbprint and the
/// SHA-256 of the proof's `jti` (at most 256 bytes before hashing).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProofId {
    /// The thumbprint of the proof's key (43 base64url characters).
    pub jkt: String,
    /// SHA-256 of the proof's `jti`.
    pub jti_hash: [u8; 32],
}

impl ProofId {
    /// The id of a proof by the key `jkt` with `jti`.
    pub fn new(jkt: &str, jti: &str) -> Self {
        let mut jti_hash = [0u8; 32];
        jti_hash.copy_from_slice(digest::digest(&digest::SHA256, jti.as_bytes()).as_ref());
        Self {
            jkt: jkt.to_owned(),
            jti_hash,
        }
    }
}

/// What a replay store said about a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First use within its window: now remembered.
    New,
    /// Used before, within its window: a replay.
    Replayed,
}

/// Why a replay store could not answer. Either way the proof is refused (fail closed), as a
/// server-side condition (503).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayStoreError {
    /// The store holds as many live proofs as it may.
    #[error("the DPoP replay store is full")]
    Full,
    /// The store could not be reached or failed; the text is for logs (never a proof's
    /// contents).
    #[error("the DPoP replay store is unavailable: {0}")]
    Unavailable(String),
}

/// Where accepted DPoP proofs are remembered until their window ends (RFC 9449 §11.1): each
/// proof may be used once. An implementation shared by several resource-server replicas
/// (a database, Redis) catches a proof replayed to another replica.
#[async_trait::async_trait]
pub trait ReplayStore: Send + Sync + 'static {
    /// Records the first use of `proof`, which stays acceptable until `until` (Unix seconds;
    /// it must be remembered at least that long), at `now` (Unix seconds); says whether it
    /// was used before. Atomic: of two concurrent calls with one proof, one gets
    /// [`Seen::New`].
    ///
    /// # Errors
    /// [`ReplayStoreError`] when the store cannot say: the proof is then refused.
    async fn record(&self, proof: &ProofId, until: i64, now: i64)
    -> Result<Seen, ReplayStoreError>;
}

/// The default [`ReplayStore`]: proofs seen by this process within their window, at most
/// `capacity` (default [`DEFAULT_REPLAY_CACHE_CAPACITY`]) of them. Beyond it, expired entries
/// are dropped first; if none has expired, a new proof is refused
/// ([`ReplayStoreError::Full`]).
pub struct MemoryReplayStore {
    capacity: usize,
    /// Each proof by [`MemoryReplayStore::key`], with the end of its window.
    seen: Mutex<HashMap<[u8; 32], i64>>,
}

impl std::fmt::Debug for MemoryReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryReplayStore")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl MemoryReplayStore {
    /// An empty store remembering at most `capacity` live proofs.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            seen: Mutex::default(),
        }
    }

    /// A proof's entry: SHA-256 over its key's thumbprint and its `jti`'s hash, a fixed-size
    /// value held in the map itself (no allocation per proof). The thumbprint is text without
    /// a zero byte, so the zero between them keeps any two pairs apart.
    fn key(proof: &ProofId) -> [u8; 32] {
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(proof.jkt.as_bytes());
        context.update(&[0]);
        context.update(&proof.jti_hash);
        let mut key = [0u8; 32];
        key.copy_from_slice(context.finish().as_ref());
        key
    }

    fn record_now(&self, proof: &ProofId, until: i64, now: i64) -> Result<Seen, ReplayStoreError> {
        let key = Self::key(proof);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&expires) = seen.get(&key)
            && expires >= now
        {
            return Ok(Seen::Replayed);
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, expires| *expires >= now);
            if seen.len() >= self.capacity {
                return Err(ReplayStoreError::Full);
            }
        }
        seen.insert(key, until);
        Ok(Seen::New)
    }
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        Self::new(DEFAULT_REPLAY_CACHE_CAPACITY)
    }
}

#[async_trait::async_trait]
impl ReplayStore for MemoryReplayStore {
    async fn record(
        &self,
        proof: &ProofId,
        until: i64,
        now: i64,
    ) -> Result<Seen, ReplayStoreError> {
        self.record_now(proof, until, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_new_once_within_its_window_and_the_cache_stays_bounded() {
        let cache = MemoryReplayStore::new(2);
        let (ka, other_a, kb) = (
            ProofId::new("k", "a"),
            ProofId::new("other", "a"),
            ProofId::new("k", "b"),
        );
        assert_eq!(cache.record_now(&ka, 160, 100), Ok(Seen::New));
        assert_eq!(cache.record_now(&ka, 160, 159), Ok(Seen::Replayed));
        assert_eq!(cache.record_now(&other_a, 160, 100), Ok(Seen::New));
        // Full of live entries: refused, nothing forgotten.
        assert_eq!(cache.record_now(&kb, 160, 100), Err(ReplayStoreError::Full));
        assert_eq!(cache.record_now(&ka, 160, 120), Ok(Seen::Replayed));
        // Once they expire, they make room.
        assert_eq!(cache.record_now(&kb, 300, 161), Ok(Seen::New));
        assert_eq!(cache.record_now(&ka, 300, 161), Ok(Seen::New));
    }
}
