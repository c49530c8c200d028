//! Server-provided DPoP nonces (RFC 9449 §8 at the authorization server, §9 at a resource
//! server), made without state so that every instance sharing a secret issues and accepts the
//! same nonces.
//!
//! A nonce is the rotation window it was made in and a MAC over it: `base64url(window
//! (8 bytes, big-endian) ‖ HMAC-SHA256 tag (first 16 bytes))`, 32 characters. The MAC key is
//! derived from a secret with HKDF-SHA256 (RFC 5869) under a label of the caller's, so the
//! secret may be one with other uses (the IdP derives one key from each signing key).
//!
//! A nonce is fresh in the window it was made in and the next ([`NONCE_ROTATION`] seconds
//! each: it lives 1–2 minutes), and one window early (instances' clocks may differ a little).
//! Servers hand out the current one ([`NonceKey::nonce`]) with each response to a proof, so
//! a client that follows them meets a `use_dpop_nonce` error only on its first request.

use aws_lc_rs::{constant_time, hkdf, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// How long one nonce window lasts, seconds: a new nonce is issued every window.
pub const NONCE_ROTATION: i64 = 60;

/// The shortest secret [`NonceKey::derive`] accepts, bytes (256 bits).
pub const MIN_SECRET_LEN: usize = 32;

/// Bytes of the MAC kept in a nonce (128 bits).
const TAG_LEN: usize = 16;
/// Bytes of a decoded nonce: the window and the tag.
const NONCE_LEN: usize = 8 + TAG_LEN;

/// The MAC key nonces are made and checked with. Its `Debug` shows nothing of the key.
pub struct NonceKey(hmac::Key);

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey([redacted])")
    }
}

/// A secret too short to derive a nonce key from (under [`MIN_SECRET_LEN`] bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a DPoP nonce secret needs at least {MIN_SECRET_LEN} bytes")]
pub struct ShortSecret;

impl NonceKey {
    /// Derives the nonce key from `secret` (at least [`MIN_SECRET_LEN`] bytes) with
    /// HKDF-SHA256, `label` as the salt: the same secret and label give the same key on every
    /// instance, another label an independent one.
    ///
    /// # Errors
    /// [`ShortSecret`] if `secret` is shorter than [`MIN_SECRET_LEN`].
    pub fn derive(secret: &[u8], label: &[u8]) -> Result<Self, ShortSecret> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(ShortSecret);
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, label).extract(secret);
        // Expanding to one HMAC-SHA256 key (32 bytes) is far below HKDF's limit of 255 hash
        // lengths, so this cannot fail; answer as for a bad secret rather than panic.
        let okm = prk
            .expand(&[b"hmac-sha256 key"], hmac::HMAC_SHA256)
            .map_err(|_| ShortSecret)?;
        Ok(Self(hmac::Key::from(okm)))
    }

    /// The nonce to hand out at `now` (Unix seconds).
    pub fn nonce(&self, now: i64) -> String {
        let window = window_of(now);
        let mut bytes = Vec::with_capacity(NONCE_LEN);
        bytes.extend_from_slice(&window.to_be_bytes());
        bytes.extend_from_slice(&self.tag(window).as_ref()[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Whether `nonce` was made by one of `keys` in the window of `now` (Unix seconds), the
    /// one before, or the one after. Compared in constant time.
    pub fn is_fresh<'a>(keys: impl IntoIterator<Item = &'a Self>, nonce: &str, now: i64) -> bool {
        let Some(bytes) = URL_SAFE_NO_PAD
            .decode(nonce)
            .ok()
            .filter(|bytes| bytes.len() == NONCE_LEN)
        else {
            return false;
        };
        let (window, tag) = bytes.split_at(8);
        let Ok(window) = <[u8; 8]>::try_from(window).map(i64::from_be_bytes) else {
            return false;
        };
        if window.abs_diff(window_of(now)) > 1 {
            return false;
        }
        keys.into_iter().any(|key| {
            constant_time::verify_slices_are_equal(&key.tag(window).as_ref()[..TAG_LEN], tag)
                .is_ok()
        })
    }

    fn tag(&self, window: i64) -> hmac::Tag {
        hmac::sign(&self.0, &window.to_be_bytes())
    }
}

fn window_of(now: i64) -> i64 {
    now.div_euclid(NONCE_ROTATION)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: u8, label: &[u8]) -> NonceKey {
        NonceKey::derive(&[secret; 32], label).unwrap()
    }

    #[test]
    fn a_nonce_is_fresh_for_one_to_two_windows_with_the_same_secret_and_label_only() {
        let nonce = key(1, b"a").nonce(1_000);
        assert_eq!(nonce.len(), 32);
        let fresh = |k: &NonceKey, now| NonceKey::is_fresh([k], &nonce, now);
        assert!(fresh(&key(1, b"a"), 1_000), "another instance, same secret");
        assert!(fresh(&key(1, b"a"), 1_000 + NONCE_ROTATION));
        assert!(!fresh(&key(1, b"a"), 1_000 + 2 * NONCE_ROTATION + 60));
        assert!(
            fresh(&key(1, b"a"), 1_000 - NONCE_ROTATION),
            "one window of clock skew between instances"
        );
        assert!(!fresh(&key(2, b"a"), 1_000), "another secret");
        assert!(!fresh(&key(1, b"b"), 1_000), "another label");
        assert!(NonceKey::is_fresh(
            [&key(2, b"a"), &key(1, b"a")],
            &nonce,
            1_000
        ));
    }

    #[test]
    fn a_forged_or_malformed_nonce_is_not_fresh() {
        let key = key(3, b"a");
        let nonce = key.nonce(1_000);
        let mut bytes = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        // The window of the next day, with the same tag.
        bytes[..8].copy_from_slice(&window_of(1_000 + 86_400).to_be_bytes());
        let moved = URL_SAFE_NO_PAD.encode(&bytes);
        assert!(!NonceKey::is_fresh([&key], &moved, 1_000 + 86_400));
        for bad in ["", "x", &nonce[..31], &format!("{nonce}A"), "!!!!"] {
            assert!(!NonceKey::is_fresh([&key], bad, 1_000), "{bad:?}");
        }
        // Windows at the ends of the range do not overflow.
        bytes[..8].copy_from_slice(&i64::MIN.to_be_bytes());
        assert!(!NonceKey::is_fresh(
            [&key],
            &URL_SAFE_NO_PAD.encode(&bytes),
            i64::MAX
        ));
    }

    #[test]
    fn a_short_secret_is_refused() {
        assert_eq!(
            NonceKey::derive(&[0; MIN_SECRET_LEN - 1], b"a").unwrap_err(),
            ShortSecret
        );
    }
}
