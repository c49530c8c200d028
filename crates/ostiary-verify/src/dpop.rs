//! DPoP-bound access tokens at the resource server (RFC 9449 §7).
//!
//! A token whose claims carry `cnf.jkt` is bound to a key: it is accepted only through
//! [`Validator::validate_dpop`](crate::Validator::validate_dpop), with the request's `DPoP`
//! proof, and never as a bearer token ([`Validator::validate`](crate::Validator::validate)
//! answers [`ValidationError::DpopBound`](crate::ValidationError::DpopBound), §7.2). The proof
//! is checked by [`ostiary_jose::dpop::verify_proof`] against the request's method and URL
//! (the URL the resource server is reached at publicly, built from its configuration, never
//! from a client-supplied `Host`), with `ath` the token's hash; its key's thumbprint must be
//! the token's `cnf.jkt`; and its `jti` must not have been seen within the proof window: a
//! bounded in-memory replay cache per [`Validator`](crate::Validator) (shared by its clones).
//! Several replicas behind one URL each keep their own cache: a proof replayed to another
//! replica within the window is not caught (a shared cache is not offered yet).

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::digest;

pub use ostiary_jose::dpop::{ProofError, ProofPolicy};

/// How many proofs the replay cache remembers at most (default). Beyond it, expired entries
/// are dropped first; if none has expired, a new proof is refused
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

/// Proofs seen within their window: key thumbprint and `jti` hash → end of the window.
pub(crate) struct ReplayCache {
    capacity: usize,
    seen: Mutex<HashMap<(String, [u8; 32]), i64>>,
}

/// What the cache said about a proof.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// First time: now remembered.
    New,
    /// Seen before, within its window.
    Replayed,
    /// The cache is full of live entries.
    Full,
}

impl ReplayCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            seen: Mutex::default(),
        }
    }

    /// Records the proof of key `jkt` with `jti`, acceptable until `until`, at `now`.
    pub(crate) fn record(&self, jkt: &str, jti: &str, until: i64, now: i64) -> Seen {
        let mut hash = [0u8; 32];
        hash.copy_from_slice(digest::digest(&digest::SHA256, jti.as_bytes()).as_ref());
        let key = (jkt.to_owned(), hash);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&expires) = seen.get(&key)
            && expires >= now
        {
            return Seen::Replayed;
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, expires| *expires >= now);
            if seen.len() >= self.capacity {
                return Seen::Full;
            }
        }
        seen.insert(key, until);
        Seen::New
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_new_once_within_its_window_and_the_cache_stays_bounded() {
        let cache = ReplayCache::new(2);
        assert_eq!(cache.record("k", "a", 160, 100), Seen::New);
        assert_eq!(cache.record("k", "a", 160, 159), Seen::Replayed);
        assert_eq!(cache.record("other", "a", 160, 100), Seen::New);
        // Full of live entries: refused, nothing forgotten.
        assert_eq!(cache.record("k", "b", 160, 100), Seen::Full);
        assert_eq!(cache.record("k", "a", 160, 120), Seen::Replayed);
        // Once they expire, they make room.
        assert_eq!(cache.record("k", "b", 300, 161), Seen::New);
        assert_eq!(cache.record("k", "a", 300, 161), Seen::New);
    }
}
