//! DPoP at the IdP (RFC 9449): accepting a client's proof, once, and what binding to its key
//! means for the tokens issued.
//!
//! [`Idp::accept_dpop_proof`] checks a proof ([`ostiary_jose::dpop::verify_proof`]: the JWS,
//! its key, method, URL, `iat` window, `ath`) and records its `jti` in the store, so that no
//! instance accepts it again within its window (§11.1). The refresh grant takes the proof
//! checked but not yet recorded ([`Idp::check_dpop_proof`], an [`UnrecordedProof`]): it
//! records it with the rotation, in one transaction, or first of all on any other path. The
//! [`DpopKey`] is what the grants bind:
//! - the access token carries `cnf.jkt` (§6.1) and is issued with `token_type: DPoP` (§5);
//! - a public client's refresh family is bound to the key of its code exchange (§5): every
//!   refresh must come with a proof by that key, or is `invalid_grant` without counting as
//!   reuse (the owner still holds the token). A confidential client's refresh tokens stay
//!   bound to its authentication.
//!
//! A client whose policy has `require_dpop` gets no token without a proof.
//!
//! An authorization request with `dpop_jkt` (§10) binds its code to that key: the exchange
//! must prove it (`invalid_grant` otherwise), so a stolen code is useless too.
//!
//! A client whose policy has `require_dpop_nonce` must also put a fresh server nonce in
//! each proof (§8, [`nonce`]); without one it gets `use_dpop_nonce` and the nonce to use.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ostiary_jose::dpop::{ProofPolicy, ProofRequest, verify_proof};

use crate::Idp;
use crate::client::{Client, ClientKind};
use crate::idp::IdpError;
use crate::store::DpopProofRecord;

pub mod nonce;

/// The reason (for logs) of the `invalid_grant` a refresh of a bound family gets without a
/// proof by its key.
pub const PROOF_REQUIRED: &str =
    "the refresh token is bound to a DPoP key: a proof by that key is required";

/// The key a request proved it holds: its JWK SHA-256 thumbprint (RFC 7638), base64url.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopKey {
    /// The thumbprint: the value of `cnf.jkt`.
    pub jkt: String,
    /// Whether the proof carried a nonce this IdP issued that is still fresh (§8).
    pub fresh_nonce: bool,
}

impl Idp {
    /// The proof policy: the algorithms of [`ostiary_jose::dpop::DEFAULT_ALGORITHMS`] and
    /// the configured `iat` window (`dpop_proof_max_age`, 5 s of clock skew ahead).
    pub fn dpop_policy(&self) -> ProofPolicy {
        ProofPolicy {
            max_age: u64::try_from(self.config.dpop_proof_max_age).unwrap_or_default(),
            ..ProofPolicy::default()
        }
    }

    /// Accepts the `DPoP` header `proof` of a `method` request to `url` (this IdP's public URL
    /// of the endpoint), with `access_token` when one is presented with it: checks it and
    /// records its `jti`, so that a second presentation anywhere is refused.
    ///
    /// # Errors
    /// [`IdpError::InvalidDpopProof`] for a proof that fails a check or was seen before;
    /// [`IdpError::Store`] if the replay cache cannot be written.
    pub async fn accept_dpop_proof(
        &self,
        proof: &str,
        method: &str,
        url: &str,
        access_token: Option<&str>,
    ) -> Result<DpopKey, IdpError> {
        let checked = self.check_dpop_proof(proof, method, url, access_token)?;
        self.record_dpop_proof(checked).await
    }

    /// Checks the `DPoP` header `proof` as [`accept_dpop_proof`](Self::accept_dpop_proof)
    /// does, without recording it: nothing may be done on its strength until it is recorded
    /// ([`record_dpop_proof`](Self::record_dpop_proof), or with a refresh rotation).
    ///
    /// # Errors
    /// [`IdpError::InvalidDpopProof`] for a proof that fails a check.
    pub fn check_dpop_proof(
        &self,
        proof: &str,
        method: &str,
        url: &str,
        access_token: Option<&str>,
    ) -> Result<UnrecordedProof, IdpError> {
        let policy = self.dpop_policy();
        let now = self.now();
        let request = ProofRequest {
            method,
            url,
            access_token,
        };
        let checked = verify_proof(proof, &request, &policy, u64::try_from(now).unwrap_or(0))
            .map_err(|e| IdpError::InvalidDpopProof(e.to_string()))?;
        // A hash: the jti is the client's text (any length up to the limit, any character).
        let jti_hash =
            URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, checked.jti.as_bytes()));
        let expires_at = i64::try_from(policy.acceptable_until(checked.iat)).unwrap_or(i64::MAX);
        let keys = self.keys();
        let fresh_nonce = checked
            .nonce
            .as_deref()
            .is_some_and(|nonce| keys.dpop_nonce_is_fresh(nonce, now));
        Ok(UnrecordedProof {
            record: DpopProofRecord {
                jkt: checked.jkt.clone(),
                jti_hash,
                expires_at,
            },
            key: DpopKey {
                jkt: checked.jkt,
                fresh_nonce,
            },
        })
    }

    /// Records a checked proof's `jti` in the store's replay cache; its key, if that was its
    /// first use.
    ///
    /// # Errors
    /// [`IdpError::InvalidDpopProof`] for a proof seen before within its window;
    /// [`IdpError::Store`] if the replay cache cannot be written.
    pub async fn record_dpop_proof(&self, proof: UnrecordedProof) -> Result<DpopKey, IdpError> {
        self.record_proof_entry(&proof.record).await?;
        Ok(proof.key)
    }

    /// Enters `record` in the store's replay cache: [`IdpError::InvalidDpopProof`] if it was
    /// there (a replay).
    pub(crate) async fn record_proof_entry(
        &self,
        record: &DpopProofRecord,
    ) -> Result<(), IdpError> {
        if self
            .store
            .use_dpop_proof(&record.jkt, &record.jti_hash, record.expires_at, self.now())
            .await?
        {
            Ok(())
        } else {
            Err(replayed())
        }
    }

    /// The DPoP nonce to hand out now (RFC 9449 §8.1: the `DPoP-Nonce` header of token
    /// responses), the same on every instance; `None` only while no key signs.
    pub fn dpop_nonce(&self) -> Option<String> {
        self.keys().dpop_nonce(self.now())
    }

    /// Refuses a token request that `client`'s policy does not allow: without a proof when
    /// it has `require_dpop`; with a proof lacking a fresh server nonce when it has
    /// `require_dpop_nonce` ([`IdpError::UseDpopNonce`], carrying the nonce to use).
    pub(crate) fn dpop_required_by(
        &self,
        client: &Client,
        dpop: Option<&DpopKey>,
    ) -> Result<(), IdpError> {
        required_by(client, dpop)?;
        if client.policy.require_dpop_nonce == Some(true) && dpop.is_some_and(|k| !k.fresh_nonce) {
            return Err(IdpError::UseDpopNonce {
                nonce: self.dpop_nonce(),
            });
        }
        Ok(())
    }

    /// The URL DPoP proofs for the token endpoint name (`htu`).
    pub fn token_url(&self) -> String {
        format!("{}/token", self.config.issuer.trim_end_matches('/'))
    }
}

/// A proof that passed every check of [`Idp::check_dpop_proof`], its `jti` not recorded yet.
#[derive(Debug, Clone)]
pub struct UnrecordedProof {
    key: DpopKey,
    record: DpopProofRecord,
}

impl UnrecordedProof {
    /// The key the proof was made with. Checking it is allowed before the proof is recorded;
    /// acting on it is not.
    pub fn key(&self) -> &DpopKey {
        &self.key
    }

    /// Its entry in the replay cache, for a store call that records it with other changes.
    pub(crate) fn into_parts(self) -> (DpopKey, DpopProofRecord) {
        (self.key, self.record)
    }
}

/// The error for a proof seen before within its window (RFC 9449 §11.1).
pub(crate) fn replayed() -> IdpError {
    IdpError::InvalidDpopProof(ostiary_jose::dpop::ProofError::Replayed.to_string())
}

/// The key a new refresh family of `client` is bound to: a public (or browser) client's proof
/// key; none for a confidential client, whose refresh tokens are bound to its authentication.
pub(crate) fn family_binding(client: &Client, dpop: Option<&DpopKey>) -> Option<String> {
    match client.kind {
        ClientKind::Confidential => None,
        ClientKind::Public | ClientKind::Browser => dpop.map(|key| key.jkt.clone()),
    }
}

/// Refuses a token request of a client that must use DPoP (`require_dpop`) made without a
/// proof.
fn required_by(client: &Client, dpop: Option<&DpopKey>) -> Result<(), IdpError> {
    if dpop.is_none() && client.policy.require_dpop == Some(true) {
        return Err(IdpError::InvalidDpopProof(
            "this client must send a DPoP proof with its token requests".into(),
        ));
    }
    Ok(())
}

/// Whether a grant bound to `bound` (a refresh family, or a code whose request named
/// `dpop_jkt`) may be used with `dpop`.
pub(crate) fn bound_key_proved(bound: Option<&str>, dpop: Option<&DpopKey>) -> bool {
    match bound {
        None => true,
        Some(bound) => dpop.is_some_and(|key| key.jkt == bound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(jkt: &str) -> DpopKey {
        DpopKey {
            jkt: jkt.into(),
            fresh_nonce: false,
        }
    }

    #[test]
    fn a_bound_family_needs_a_proof_by_its_key() {
        assert!(bound_key_proved(None, None));
        assert!(bound_key_proved(None, Some(&key("a"))));
        assert!(bound_key_proved(Some("a"), Some(&key("a"))));
        assert!(!bound_key_proved(Some("a"), Some(&key("b"))));
        assert!(!bound_key_proved(Some("a"), None));
    }
}
