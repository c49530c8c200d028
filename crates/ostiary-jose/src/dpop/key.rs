//! A DPoP proof's public key (the `jwk` of its header, RFC 9449 §4.2), vetted: public, one
//! spelling per key, a kind that verifies the proof's `alg`; its RFC 7638 thumbprint; and the
//! strict Ed25519 check.

use std::str::FromStr;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, EcdsaVerificationAlgorithm,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use super::key_cache;
use super::read::{JwkMembers, Loose};
use super::{ED25519, ProofError};
use crate::KeyKind;

/// The algorithm a JOSE `alg` value names, in a proof's header or its key's `alg` member:
/// its registered name, or `Ed25519`, RFC 9864 §2.2's fully specified name of EdDSA with the
/// Ed25519 curve, which client libraries now use (`EdDSA` is deprecated; Ed25519 is the only
/// curve accepted for it).
pub(super) fn algorithm_named(name: &str) -> Option<Algorithm> {
    if name == ED25519 {
        return Some(Algorithm::EdDSA);
    }
    Algorithm::from_str(name).ok()
}

/// A proof's public key, vetted.
pub(super) struct ProofKey {
    /// What checks the signature.
    pub(super) verifier: Verifier,
    /// Its JWK SHA-256 thumbprint (RFC 7638), base64url.
    pub(super) jkt: String,
}

/// How a proof's signature is checked, by the kind of its key.
pub(super) enum Verifier {
    /// ES256 or ES384 with aws-lc-rs: the uncompressed point `04 ‖ x ‖ y` and the fixed-size
    /// `R ‖ S` signature of JWS (RFC 7518 §3.4), the key parsed once per process
    /// ([`key_cache`]).
    Ecdsa {
        algorithm: &'static EcdsaVerificationAlgorithm,
        point: Vec<u8>,
    },
    /// Ed25519, `x` (checked with [`verify_ed25519`]).
    Ed25519([u8; 32]),
    /// RSA (RS256, PS256, …) through `jsonwebtoken`.
    Rsa(DecodingKey),
}

impl ProofKey {
    /// Checks `signature` (decoded; `encoded` is its base64url) over `signing_input`.
    pub(super) fn verify(
        &self,
        alg: Algorithm,
        signing_input: &str,
        signature: &[u8],
        encoded: &str,
    ) -> Result<(), ProofError> {
        let good = match &self.verifier {
            Verifier::Ecdsa { algorithm, point } => {
                key_cache::verify(algorithm, point, signing_input.as_bytes(), signature)
            }
            Verifier::Ed25519(x) => return verify_ed25519(x, signing_input, signature),
            Verifier::Rsa(decoding) => {
                jsonwebtoken::crypto::verify(encoded, signing_input.as_bytes(), decoding, alg)
                    .unwrap_or(false)
            }
        };
        if good {
            Ok(())
        } else {
            Err(ProofError::BadSignature)
        }
    }
}

/// The header's `jwk` (`None` if absent, `Some(None)` if not an object), vetted: public,
/// canonical base64url members, a kind that verifies `alg`, its own `alg` (if any) the same.
pub(super) fn public_key(
    jwk: Option<Option<JwkMembers<'_>>>,
    alg: Algorithm,
) -> Result<ProofKey, ProofError> {
    let Some(Some(members)) = jwk else {
        return Err(ProofError::InvalidKey);
    };
    if members.private {
        return Err(ProofError::InvalidKey);
    }
    if let Some(own) = &members.alg {
        let fits = own
            .text()
            .and_then(algorithm_named)
            .is_some_and(|own| own == alg);
        if !fits {
            return Err(ProofError::InvalidKey);
        }
    }
    let kty = text(&members.kty)?.ok_or(ProofError::InvalidKey)?;
    if kty == "EC" {
        return ec_key(&members, alg);
    }
    // The thumbprint is computed from these members' text: it must be the canonical
    // base64url that the key was decoded from, or two spellings of one key would have two
    // thumbprints.
    let mut key = Map::new();
    key.insert("kty".to_owned(), Value::from(kty));
    for (name, member) in [
        ("crv", &members.crv),
        ("x", &members.x),
        ("y", &members.y),
        ("n", &members.n),
        ("e", &members.e),
    ] {
        let Some(value) = text(member)? else {
            continue;
        };
        if name != "crv" && (value.is_empty() || URL_SAFE_NO_PAD.decode(value).is_err()) {
            return Err(ProofError::InvalidKey);
        }
        key.insert(name.to_owned(), Value::from(value));
    }
    let jwk: Jwk =
        serde_json::from_value(Value::Object(key)).map_err(|_| ProofError::InvalidKey)?;
    let kind = KeyKind::of(&jwk).ok_or(ProofError::InvalidKey)?;
    if !kind.verifies(alg) {
        return Err(ProofError::InvalidKey);
    }
    let jkt = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| ProofError::InvalidKey)?;
    let verifier = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(okp) => Verifier::Ed25519(
            URL_SAFE_NO_PAD
                .decode(&okp.x)
                .ok()
                .and_then(|x| x.try_into().ok())
                .ok_or(ProofError::InvalidKey)?,
        ),
        _ => Verifier::Rsa(DecodingKey::from_jwk(&jwk).map_err(|_| ProofError::InvalidKey)?),
    };
    Ok(ProofKey { verifier, jkt })
}

/// A member that must be text if present.
fn text<'m>(member: &'m Option<Loose<'_>>) -> Result<Option<&'m str>, ProofError> {
    match member {
        None => Ok(None),
        Some(value) => value.text().map(Some).ok_or(ProofError::InvalidKey),
    }
}

/// An EC key (`kty: EC`: what browsers' WebCrypto and most clients use): `crv` P-256 or P-384
/// (whichever fits `alg`), the point itself checked by the signature verification.
fn ec_key(members: &JwkMembers<'_>, alg: Algorithm) -> Result<ProofKey, ProofError> {
    let crv = text(&members.crv)?;
    let (kind, coordinate_len, algorithm) = match crv {
        Some("P-256") => (KeyKind::EcP256, 32, &ECDSA_P256_SHA256_FIXED),
        Some("P-384") => (KeyKind::EcP384, 48, &ECDSA_P384_SHA384_FIXED),
        _ => return Err(ProofError::InvalidKey),
    };
    if !kind.verifies(alg) {
        return Err(ProofError::InvalidKey);
    }
    let (Some(crv), Some(x), Some(y)) = (crv, text(&members.x)?, text(&members.y)?) else {
        return Err(ProofError::InvalidKey);
    };
    // RFC 7518 §6.2.1.2–3: each coordinate is the full size of the curve's field, so that a
    // point has one spelling (and one thumbprint): `04 ‖ x ‖ y` split elsewhere is the same
    // point. The engine refuses padding and non-canonical trailing bits.
    let mut point = Vec::with_capacity(1 + 2 * coordinate_len);
    point.push(0x04);
    for coordinate in [x, y] {
        let before = point.len();
        URL_SAFE_NO_PAD
            .decode_vec(coordinate, &mut point)
            .map_err(|_| ProofError::InvalidKey)?;
        if point.len() - before != coordinate_len {
            return Err(ProofError::InvalidKey);
        }
    }
    // RFC 7638 §3.2: the required members in lexicographic order, no whitespace.
    let canonical = format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let jkt = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()));
    Ok(ProofKey {
        verifier: Verifier::Ecdsa { algorithm, point },
        jkt,
    })
}

/// An Ed25519 signature checked strictly (`ed25519-dalek`'s `verify_strict`), by a key that
/// is not weak. A proof's key is the client's own choice: a small-order key (the identity
/// point, say) would "verify" a constant signature over any message under the lenient
/// RFC 8032 rules, so that a token "bound" to it would in truth be a bearer token.
pub(super) fn verify_ed25519(
    x: &[u8; 32],
    signing_input: &str,
    signature: &[u8],
) -> Result<(), ProofError> {
    let key = ed25519_dalek::VerifyingKey::from_bytes(x).map_err(|_| ProofError::InvalidKey)?;
    if key.is_weak() {
        return Err(ProofError::InvalidKey);
    }
    let signature: [u8; 64] = signature.try_into().map_err(|_| ProofError::BadSignature)?;
    key.verify_strict(
        signing_input.as_bytes(),
        &ed25519_dalek::Signature::from_bytes(&signature),
    )
    .map_err(|_| ProofError::BadSignature)
}
