//! Authorization codes (RFC 6749 §4.1.2) and PKCE (RFC 7636, `S256` only as OAuth 2.1 and
//! RFC 9700 §2.1.1 recommend).

use aws_lc_rs::{constant_time, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::client::ClientId;
use crate::clock::UnixTime;
use crate::scope::Scope;
use crate::secret::CredentialHash;

/// A PKCE code challenge: base64url of a SHA-256 digest (exactly 43 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

/// Why a PKCE value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPkce {
    /// The challenge is not 43 base64url characters.
    #[error("code_challenge must be the base64url SHA-256 of the verifier (43 characters)")]
    BadChallenge,
    /// The verifier is not 43–128 characters of `A-Z a-z 0-9 - . _ ~` (RFC 7636 §4.1).
    #[error("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")]
    BadVerifier,
}

impl CodeChallenge {
    /// Parses an `S256` challenge.
    pub fn parse_s256(value: &str) -> Result<Self, InvalidPkce> {
        let ok = value.len() == 43
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidPkce::BadChallenge)
        }
    }

    /// Restores a challenge read from storage.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    /// The challenge as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks a `code_verifier`'s form (RFC 7636 §4.1: 43 to 128 characters of
    /// `[A-Za-z0-9-._~]`), which says nothing about any code.
    pub fn check_verifier(verifier: &str) -> Result<(), InvalidPkce> {
        let ok = (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if ok {
            Ok(())
        } else {
            Err(InvalidPkce::BadVerifier)
        }
    }

    /// Checks a `code_verifier` against this challenge (RFC 7636 §4.6), in constant time.
    pub fn verify(&self, verifier: &str) -> Result<bool, InvalidPkce> {
        Self::check_verifier(verifier)?;
        let computed = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
        Ok(constant_time::verify_slices_are_equal(computed.as_bytes(), self.0.as_bytes()).is_ok())
    }
}

/// What an authorization code stands for, as stored (the code itself only as a hash).
#[derive(Debug, Clone)]
pub struct AuthorizationCode {
    /// SHA-256 of the code.
    pub code_hash: CredentialHash,
    /// The client it was issued to.
    pub client_id: ClientId,
    /// The redirect URI of the authorization request; the token request must repeat it.
    pub redirect_uri: String,
    /// The IdP session the user authorized in.
    pub sid: String,
    /// The user.
    pub user_id: String,
    /// Scope granted.
    pub scope: Scope,
    /// Resource (access-token audience) granted.
    pub resource: String,
    /// The PKCE challenge.
    pub code_challenge: CodeChallenge,
    /// OIDC `nonce`, echoed into the ID token.
    pub nonce: Option<String>,
    /// The DPoP key thumbprint the authorization request named (`dpop_jkt`, RFC 9449 §10):
    /// the code exchange must come with a proof by that key.
    pub dpop_jkt: Option<String>,
    /// When the user authenticated.
    pub auth_time: UnixTime,
    /// When the code was issued.
    pub created_at: UnixTime,
    /// When it stops being accepted.
    pub expires_at: UnixTime,
    /// When it was redeemed; `None` until then (and in what is stored: the store sets it).
    pub used_at: Option<UnixTime>,
}

/// The outcome of consuming a code in the store.
#[derive(Debug, Clone)]
pub enum CodeConsumption {
    /// First use by the client it was issued to: the code is now marked used.
    First(AuthorizationCode),
    /// The code was used before: a replay (by the client it was issued to).
    Replayed(AuthorizationCode),
    /// Another client presented it: nothing changed, the code is still the holder's to
    /// redeem (or, if used, to have replayed).
    OtherClient(AuthorizationCode),
    /// No such code.
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_the_rfc_7636_example() {
        // RFC 7636 Appendix B.
        let challenge =
            CodeChallenge::parse_s256("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").unwrap();
        assert_eq!(
            challenge.verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            Ok(true)
        );
        assert_eq!(
            challenge.verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX"),
            Ok(false)
        );
        assert_eq!(challenge.verify("short"), Err(InvalidPkce::BadVerifier));
        assert!(CodeChallenge::parse_s256("plain-text-challenge").is_err());
    }
}
