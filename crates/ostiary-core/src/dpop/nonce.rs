//! Server-provided DPoP nonces (RFC 9449 §8).
//!
//! A client whose policy has `require_dpop_nonce` must put in each proof a `nonce` this IdP
//! issued recently, which bounds how far ahead a proof can be made (a proof made on a stolen
//! device cannot be stockpiled for later). A nonce is not stored: it is the rotation window
//! it was made in and a MAC over it, `base64url(window (8 bytes, big-endian) ‖ tag (16
//! bytes))`, 32 characters. The MAC key of each signing key is derived from its private key
//! with HKDF-SHA256 (RFC 5869), so every instance that loads the same keys from the store
//! makes and accepts the same nonces, and sealing the signing keys at rest seals these too.
//!
//! A nonce is valid in the window it was made in and the next ([`NONCE_ROTATION`] seconds
//! each: 1–2 minutes), and one window early (instances' clocks may differ a little). Each
//! token response to a proof carries the current nonce (`DPoP-Nonce`), so a client that
//! follows them never meets a `use_dpop_nonce` error after its first request.

use aws_lc_rs::{constant_time, hkdf, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::clock::UnixTime;
use crate::keys::{KeyError, KeyRing};

/// How long one nonce window lasts, seconds: a new nonce is issued every window.
pub const NONCE_ROTATION: i64 = 60;

/// Bytes of the MAC kept in a nonce (128 bits).
const TAG_LEN: usize = 16;
/// Bytes of a decoded nonce: the window and the tag.
const NONCE_LEN: usize = 8 + TAG_LEN;

/// The MAC key of a signing key's nonces. No `Debug` of its contents.
pub(crate) struct NonceKey(hmac::Key);

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey([redacted])")
    }
}

impl NonceKey {
    /// Derives the nonce MAC key from a signing key's private PKCS#8 DER (HKDF-SHA256 with a
    /// label of its own, so it is independent of every other use of that key).
    pub(crate) fn derive(private_der: &[u8]) -> Result<Self, KeyError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"ostiary dpop-nonce v1").extract(private_der);
        let okm = prk
            .expand(&[b"hmac-sha256 key"], hmac::HMAC_SHA256)
            .map_err(|_| KeyError::from_message("could not derive the DPoP nonce key".into()))?;
        Ok(Self(hmac::Key::from(okm)))
    }

    fn tag(&self, window: i64) -> hmac::Tag {
        hmac::sign(&self.0, &window.to_be_bytes())
    }
}

fn window_of(now: UnixTime) -> i64 {
    now.div_euclid(NONCE_ROTATION)
}

impl KeyRing {
    /// The nonce to hand out at `now` (RFC 9449 §8): made with the issuing key (the current
    /// signing key with the lowest `kid`, the same on every instance). `None` if no key
    /// signs.
    pub fn dpop_nonce(&self, now: UnixTime) -> Option<String> {
        let key = self.nonce_issuer()?;
        let window = window_of(now);
        let mut bytes = Vec::with_capacity(NONCE_LEN);
        bytes.extend_from_slice(&window.to_be_bytes());
        bytes.extend_from_slice(&key.tag(window).as_ref()[..TAG_LEN]);
        Some(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Whether `nonce` was made by one of the published keys (on any instance) in the current
    /// window at `now`, the one before, or the one after.
    pub fn dpop_nonce_is_fresh(&self, nonce: &str, now: UnixTime) -> bool {
        let Some(bytes) = URL_SAFE_NO_PAD
            .decode(nonce)
            .ok()
            .filter(|b| b.len() == NONCE_LEN)
        else {
            return false;
        };
        let (window, tag) = bytes.split_at(8);
        let Ok(window) = <[u8; 8]>::try_from(window).map(i64::from_be_bytes) else {
            return false;
        };
        if (window - window_of(now)).abs() > 1 {
            return false;
        }
        self.nonce_keys().any(|key| {
            constant_time::verify_slices_are_equal(&key.tag(window).as_ref()[..TAG_LEN], tag)
                .is_ok()
        })
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
    fn a_forged_or_malformed_nonce_is_not_fresh() {
        let key = LoadedKey::generate(SigningAlgorithm::EdDSA, 0, 0).unwrap();
        let keys = ring(&[key], 1_000);
        let nonce = keys.dpop_nonce(1_000).unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        // The window of the next day, with the same tag.
        bytes[..8].copy_from_slice(&(window_of(1_000 + 86_400)).to_be_bytes());
        let moved = URL_SAFE_NO_PAD.encode(&bytes);
        assert!(!keys.dpop_nonce_is_fresh(&moved, 1_000 + 86_400));
        for bad in ["", "x", &nonce[..31], &format!("{nonce}A"), "!!!!"] {
            assert!(!keys.dpop_nonce_is_fresh(bad, 1_000), "{bad:?}");
        }
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
