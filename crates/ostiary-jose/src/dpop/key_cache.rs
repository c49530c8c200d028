//! EC public keys of proofs, parsed once per process rather than for every proof. A client
//! signs all its proofs with one key; decoding and validating that key's point is a part of
//! each signature check (about 1–2 µs of ES256's ~55 µs here) that a key seen before need not
//! pay again.
//!
//! Bounded: at most [`CAPACITY`] keys, the whole cache emptied when a new key would exceed it
//! (keys still in use are parsed again on their next proof). A key enters only with a
//! signature it verified, so filling the cache takes signed proofs by many keys: it costs
//! their signer as much as it costs us, and only ever the time of a parse.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use aws_lc_rs::signature::{EcdsaVerificationAlgorithm, ParsedPublicKey};

/// How many keys the cache holds at most (each ~0.5 KiB).
pub(super) const CAPACITY: usize = 4096;

/// The process's cache.
static KEYS: LazyLock<KeyCache> = LazyLock::new(|| KeyCache::new(CAPACITY));

/// Whether `signature` (fixed-size `R ‖ S`) over `message` verifies with the key at `point`
/// (uncompressed, `04 ‖ x ‖ y`) under `algorithm`. A point that is not on the curve verifies
/// nothing.
pub(super) fn verify(
    algorithm: &'static EcdsaVerificationAlgorithm,
    point: &[u8],
    message: &[u8],
    signature: &[u8],
) -> bool {
    KEYS.verify(algorithm, point, message, signature)
}

/// Parsed keys by their uncompressed point, each with the algorithm it was parsed for: a key
/// parsed for one algorithm never answers for another.
struct KeyCache {
    capacity: usize,
    keys: RwLock<HashMap<Vec<u8>, Cached>>,
}

/// A parsed key and the algorithm it verifies.
#[derive(Clone)]
struct Cached {
    algorithm: &'static EcdsaVerificationAlgorithm,
    key: Arc<ParsedPublicKey>,
}

impl KeyCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            keys: RwLock::default(),
        }
    }

    fn verify(
        &self,
        algorithm: &'static EcdsaVerificationAlgorithm,
        point: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        let known = self
            .keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(point)
            .cloned();
        // (Each algorithm is one static of aws-lc-rs: its address is its identity.)
        if let Some(cached) = known
            && std::ptr::eq(cached.algorithm, algorithm)
        {
            return cached.key.verify_sig(message, signature).is_ok();
        }
        let Ok(key) = ParsedPublicKey::new(algorithm, point) else {
            return false;
        };
        if key.verify_sig(message, signature).is_err() {
            return false;
        }
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if keys.len() >= self.capacity {
            keys.clear();
        }
        let key = Arc::new(key);
        keys.insert(point.to_vec(), Cached { algorithm, key });
        true
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED,
        EcdsaKeyPair, KeyPair as _,
    };

    use super::*;

    fn key() -> EcdsaKeyPair {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap()
    }

    fn sign(key: &EcdsaKeyPair, message: &[u8]) -> Vec<u8> {
        key.sign(&SystemRandom::new(), message)
            .unwrap()
            .as_ref()
            .to_vec()
    }

    #[test]
    fn a_cached_key_still_checks_every_signature() {
        let cache = KeyCache::new(8);
        let (alice, mallory) = (key(), key());
        let point = alice.public_key().as_ref();
        let good = sign(&alice, b"message");
        // A bad signature does not bring its key in.
        assert!(!cache.verify(
            &ECDSA_P256_SHA256_FIXED,
            point,
            b"message",
            &sign(&mallory, b"message")
        ));
        assert_eq!(cache.len(), 0);
        assert!(cache.verify(&ECDSA_P256_SHA256_FIXED, point, b"message", &good));
        assert_eq!(cache.len(), 1);
        // Known now, and still only its own signatures over their own messages verify.
        assert!(cache.verify(&ECDSA_P256_SHA256_FIXED, point, b"message", &good));
        assert!(!cache.verify(&ECDSA_P256_SHA256_FIXED, point, b"other", &good));
        assert!(!cache.verify(
            &ECDSA_P256_SHA256_FIXED,
            point,
            b"message",
            &sign(&mallory, b"message")
        ));
        // A point that is not a key, or a key under the algorithm of another curve, verifies
        // nothing.
        let mut off_curve = point.to_vec();
        off_curve[64] ^= 1;
        assert!(!cache.verify(&ECDSA_P256_SHA256_FIXED, &off_curve, b"message", &good));
        // Known under ES256, it still answers nothing under another algorithm (found by an
        // attack run: the cache was keyed by the point alone).
        assert!(!cache.verify(&ECDSA_P384_SHA384_FIXED, point, b"message", &good));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let cache = KeyCache::new(2);
        for _ in 0..5 {
            let key = key();
            let signature = sign(&key, b"m");
            assert!(cache.verify(
                &ECDSA_P256_SHA256_FIXED,
                key.public_key().as_ref(),
                b"m",
                &signature
            ));
            assert!((1..=2).contains(&cache.len()));
        }
    }
}
