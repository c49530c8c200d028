//! Secrets live in types whose `Debug` is redacted; only the line that uses a secret exposes it.
//!
//! Credentials that Ostiary issues (refresh tokens, authorization codes, browser-session
//! cookies, client secrets) are 256 bits from the operating system's CSPRNG, encoded as
//! base64url without padding (43 characters). Because they are uniformly random, a single
//! SHA-256 is a sufficient one-way function for storing them ([`CredentialHash`]); passwords,
//! which are not, get Argon2id (see [`crate::user`]).

use std::fmt;

use aws_lc_rs::{constant_time, digest, rand::SecureRandom as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};

/// Length in bytes of every random credential Ostiary issues (256 bits).
pub const CREDENTIAL_BYTES: usize = 32;

/// Fills a buffer with bytes from the operating system's CSPRNG.
///
/// # Panics
/// Only if the operating system cannot provide randomness, in which case no credential can
/// be issued safely and stopping is the right thing to do.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut buf)
        .expect("the operating system's random number generator failed");
    buf
}

/// Compares two byte strings in constant time (for a given length; lengths are not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// A random identifier that is not secret (session ids, family ids, `jti`, user ids):
/// 128 bits, base64url (22 characters).
pub fn random_id() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<16>())
}

/// A high-entropy credential in clear: a refresh token, authorization code, browser-session
/// cookie value or client secret. `Debug` prints `Credential([redacted])`.
#[derive(Clone)]
pub struct Credential(SecretString);

impl Credential {
    /// A fresh 256-bit random credential.
    pub fn generate() -> Self {
        Self(SecretString::from(
            URL_SAFE_NO_PAD.encode(random_bytes::<CREDENTIAL_BYTES>()),
        ))
    }

    /// Wraps a credential presented by a client. Nothing is checked here: an unknown value
    /// simply hashes to something not in the store.
    pub fn from_presented(value: &str) -> Self {
        Self(SecretString::from(value.to_owned()))
    }

    /// The credential in clear, for the one line that sends it to its holder.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The hash under which the credential is stored.
    pub fn hash(&self) -> CredentialHash {
        CredentialHash::of(self.expose().as_bytes())
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential([redacted])")
    }
}

/// SHA-256 of a credential, base64url without padding. This, never the credential, is stored.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CredentialHash(String);

impl CredentialHash {
    /// Hashes `bytes` with SHA-256.
    pub fn of(bytes: &[u8]) -> Self {
        Self(URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, bytes)))
    }

    /// Restores a hash read from storage.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    /// The stored form (base64url of the 32-byte digest).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares in constant time.
    pub fn matches(&self, other: &CredentialHash) -> bool {
        constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl fmt::Debug for CredentialHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A hash of a high-entropy secret is not itself secret, but there is no reason to
        // spread it through logs either.
        f.write_str("CredentialHash(..)")
    }
}

/// A password as typed by a user. `Debug` is redacted; dropped memory is zeroed.
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    /// Longest accepted password, in bytes (protects the hasher from megabyte inputs).
    pub const MAX_BYTES: usize = 1024;
    /// Shortest password accepted for a new account, in characters.
    pub const MIN_CHARS: usize = 8;

    /// Wraps a password.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The password in clear, for the hasher.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_the_secret() {
        let credential = Credential::generate();
        let password = Password::new("correct horse battery staple");
        assert!(!format!("{credential:?}").contains(credential.expose()));
        assert!(!format!("{password:?}").contains("horse"));
    }

    #[test]
    fn generated_credentials_are_256_bit_and_distinct() {
        let a = Credential::generate();
        let b = Credential::generate();
        assert_eq!(a.expose().len(), 43);
        assert_ne!(a.expose(), b.expose());
        assert!(
            a.hash()
                .matches(&Credential::from_presented(a.expose()).hash())
        );
        assert!(!a.hash().matches(&b.hash()));
    }
}
