//! A DPoP proof's public key (the `jwk` of its header, RFC 9449 §4.2), vetted: public, one
//! spelling per key, a kind that verifies the proof's `alg`; its RFC 7638 thumbprint; and the
//! strict Ed25519 check.

use std::str::FromStr;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize as _;
use serde_json::{Map, Value};

use super::{ED25519, ProofError};
use crate::KeyKind;

/// Private or symmetric JWK members: a proof's `jwk` with any of them is refused (§4.2: "MUST
/// NOT contain a private key").
const PRIVATE_JWK_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

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
    /// For the signature check (all but Ed25519).
    pub(super) decoding: DecodingKey,
    /// Its JWK SHA-256 thumbprint (RFC 7638), base64url.
    pub(super) jkt: String,
    /// An Ed25519 key's `x` (checked with `verify_ed25519` instead).
    pub(super) ed25519_x: Option<String>,
}

/// The header's `jwk`, vetted: public, canonical base64url members, a kind that verifies
/// `alg`, its own `alg` (if any) the same.
pub(super) fn public_key(
    header: &Map<String, Value>,
    alg: Algorithm,
) -> Result<ProofKey, ProofError> {
    let Some(value @ Value::Object(members)) = header.get("jwk") else {
        return Err(ProofError::InvalidKey);
    };
    if PRIVATE_JWK_MEMBERS
        .iter()
        .any(|member| members.contains_key(*member))
    {
        return Err(ProofError::InvalidKey);
    }
    // The thumbprint is computed from these members' text: it must be the canonical
    // base64url that the key was decoded from, or two spellings of one key would have two
    // thumbprints.
    for member in ["n", "e", "x", "y"] {
        match members.get(member) {
            None => {}
            Some(Value::String(value))
                if !value.is_empty() && URL_SAFE_NO_PAD.decode(value).is_ok() => {}
            Some(_) => return Err(ProofError::InvalidKey),
        }
    }
    if let Some(own) = members.get("alg") {
        let fits = own
            .as_str()
            .and_then(algorithm_named)
            .is_some_and(|own| own == alg);
        if !fits {
            return Err(ProofError::InvalidKey);
        }
    }
    if members.get("kty").and_then(Value::as_str) == Some("EC") {
        return ec_key(members, alg);
    }
    // Read from the parsed header in place (no copy of its members).
    let jwk = Jwk::deserialize(value).map_err(|_| ProofError::InvalidKey)?;
    let kind = KeyKind::of(&jwk).ok_or(ProofError::InvalidKey)?;
    if !kind.verifies(alg) {
        return Err(ProofError::InvalidKey);
    }
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| ProofError::InvalidKey)?;
    let jkt = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| ProofError::InvalidKey)?;
    let ed25519_x = match jwk.algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(okp) => Some(okp.x),
        _ => None,
    };
    Ok(ProofKey {
        decoding,
        jkt,
        ed25519_x,
    })
}

/// An EC key (`kty: EC`: what browsers' WebCrypto and most clients use), read from its
/// members with `jsonwebtoken`'s own constructor rather than through its generic `Jwk`, whose
/// flattened deserialisation measured a fifth of a proof's cost beyond the signature.
/// `crv` P-256 or P-384 (whichever fits `alg`); the point itself is checked by the signature
/// verification.
fn ec_key(members: &Map<String, Value>, alg: Algorithm) -> Result<ProofKey, ProofError> {
    let text = |name: &str| members.get(name).and_then(Value::as_str);
    // RFC 7518 §6.2.1.2–3: each coordinate is the full size of the curve's field, so that a
    // point has one spelling (and one thumbprint): `04 ‖ x ‖ y` split elsewhere is the same
    // point.
    let (kind, coordinate_len) = match text("crv") {
        Some("P-256") => (KeyKind::EcP256, 32),
        Some("P-384") => (KeyKind::EcP384, 48),
        _ => return Err(ProofError::InvalidKey),
    };
    if !kind.verifies(alg) {
        return Err(ProofError::InvalidKey);
    }
    let (Some(crv), Some(x), Some(y)) = (text("crv"), text("x"), text("y")) else {
        return Err(ProofError::InvalidKey);
    };
    let full = |coordinate: &str| {
        URL_SAFE_NO_PAD
            .decode(coordinate)
            .is_ok_and(|bytes| bytes.len() == coordinate_len)
    };
    if !full(x) || !full(y) {
        return Err(ProofError::InvalidKey);
    }
    let decoding = DecodingKey::from_ec_components(x, y).map_err(|_| ProofError::InvalidKey)?;
    // RFC 7638 §3.2: the required members in lexicographic order, no whitespace.
    let canonical = format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let jkt = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()));
    Ok(ProofKey {
        decoding,
        jkt,
        ed25519_x: None,
    })
}

/// An Ed25519 signature checked strictly (`ed25519-dalek`'s `verify_strict`), by a key that
/// is not weak. A proof's key is the client's own choice: a small-order key (the identity
/// point, say) would "verify" a constant signature over any message under the lenient
/// RFC 8032 rules, so that a token "bound" to it would in truth be a bearer token.
pub(super) fn verify_ed25519(
    x: &str,
    signing_input: &str,
    signature: &str,
) -> Result<(), ProofError> {
    let x: [u8; 32] = URL_SAFE_NO_PAD
        .decode(x)
        .ok()
        .and_then(|x| x.try_into().ok())
        .ok_or(ProofError::InvalidKey)?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| ProofError::InvalidKey)?;
    if key.is_weak() {
        return Err(ProofError::InvalidKey);
    }
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or(ProofError::BadSignature)?;
    key.verify_strict(
        signing_input.as_bytes(),
        &ed25519_dalek::Signature::from_bytes(&signature),
    )
    .map_err(|_| ProofError::BadSignature)
}
