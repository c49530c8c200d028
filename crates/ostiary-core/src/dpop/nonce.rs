//! Server-provided DPoP nonces (RFC 9449 §8).
//!
//! A client whose policy has `require_dpop_nonce` must put in each proof a `nonce` this IdP
//! issued recently, which bounds how far ahead a proof can be made (a proof made on a stolen
//! device cannot be stockpiled for later). Nonces are `ostiary_jose::dpop::nonce`'s: not
//! stored, a rotation window and a MAC over it. The MAC key of each signing key is derived
//! from its private key (HKDF-SHA256, label [`NONCE_KEY_LABEL`]), so every instance that
//! loads the same keys from the store makes and accepts the same nonces, sealing the signing
//! keys at rest seals these too, and a nonce stays good across a key rotation while the key
//! that made it is published.
//!
//! A nonce is valid in the window it was made in and the next ([`NONCE_ROTATION`] seconds
//! each: 1–2 minutes), and one window early. Each token response to a proof carries the
//! current nonce (`DPoP-Nonce`), so a client that follows them never meets a
//! `use_dpop_nonce` error after its first request.

pub use ostiary_jose::dpop::nonce::NONCE_ROTATION;
use ostiary_jose::dpop::nonce::NonceKey;

use crate::clock::UnixTime;
use crate::keys::{KeyError, KeyRing};

/// The HKDF salt the IdP's nonce keys are derived under, independent of every other use of
/// the signing keys.
pub const NONCE_KEY_LABEL: &[u8] = b"ostiary dpop-nonce v1";

/// Derives a signing key's nonce key from its private PKCS#8 DER.
pub(crate) fn derive_nonce_key(private_der: &[u8]) -> Result<NonceKey, KeyError> {
    NonceKey::derive(private_der, NONCE_KEY_LABEL)
        .map_err(|_| KeyError::from_message("could not derive the DPoP nonce key".into()))
}

impl KeyRing {
    /// The nonce to hand out at `now` (RFC 9449 §8): made with the issuing key (the current
    /// signing key with the lowest `kid`, the same on every instance). `None` if no key
    /// signs.
    pub fn dpop_nonce(&self, now: UnixTime) -> Option<String> {
        Some(self.nonce_issuer()?.nonce(now))
    }

    /// Whether `nonce` was made by one of the published keys (on any instance) in the current
    /// window at `now`, the one before, or the one after.
    pub fn dpop_nonce_is_fresh(&self, nonce: &str, now: UnixTime) -> bool {
        NonceKey::is_fresh(self.nonce_keys(), nonce, now)
    }
}

#[cfg(test)]
mod tests {
    use crate::keys::{LoadedKey, SigningAlgorithm};

    use super::*;

    fn ring(keys: &[crate::keys::StoredKey], now: UnixTime) -> KeyRing {
        KeyRing::new(keys, now, 86_400, None).unwrap()
    }

    #[test]
    fn a_nonce_is_fresh_for_one_to_two_windows_and_only_from_these_keys() {
        let key = LoadedKey::generate(SigningAlgorithm::ES256, 0, 0).unwrap();
        let keys = ring(std::slice::from_ref(&key), 1_000);
        let nonce = keys.dpop_nonce(1_000).unwrap();
        assert_eq!(nonce.len(), 32);
        assert!(keys.dpop_nonce_is_fresh(&nonce, 1_000));
        assert!(keys.dpop_nonce_is_fresh(&nonce, 1_000 + NONCE_ROTATION));
        assert!(!keys.dpop_nonce_is_fresh(&nonce, 1_000 + 2 * NONCE_ROTATION + 60));
        assert!(
            keys.dpop_nonce_is_fresh(&nonce, 1_000 - NONCE_ROTATION),
            "one window of clock skew between instances"
        );

        // Another instance with the same keys accepts it; another key set does not.
        assert!(ring(std::slice::from_ref(&key), 1_010).dpop_nonce_is_fresh(&nonce, 1_010));
        let other = ring(
            &[LoadedKey::generate(SigningAlgorithm::ES256, 0, 0).unwrap()],
            1_000,
        );
        assert!(!other.dpop_nonce_is_fresh(&nonce, 1_000));
    }

    #[test]
    fn nonces_survive_a_key_rotation() {
        let old = LoadedKey::generate(SigningAlgorithm::ES256, 0, 0).unwrap();
        let new = LoadedKey::generate(SigningAlgorithm::ES256, 0, 1_030).unwrap();
        let before = ring(&[old.clone(), new.clone()], 1_000);
        let nonce = before.dpop_nonce(1_000).unwrap();
        let after = ring(&[old, new], 1_040);
        assert!(after.dpop_nonce_is_fresh(&nonce, 1_040));
    }
}
