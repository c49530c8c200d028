//! Where verification keys come from ([`JwksSource`]) and how one is chosen for a token.
//!
//! Keys only ever come from the configured source, never from the token: the `jwk`, `jku`,
//! `x5u` and `x5c` header members are not read. Each JWK is vetted once, when the set is
//! loaded, into a `VerificationKey` whose key type then decides which algorithms it can
//! verify, whatever the token claims.

use std::path::Path;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ParsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use ostiary_jose::KeyKind;
use serde::Deserialize;

use crate::ConfigError;

/// How a [`Validator`](crate::Validator) obtains the identity provider's public keys.
///
/// Its `Debug` shows the URL or the number of keys, not the keys.
#[derive(Clone)]
pub enum JwksSource {
    /// Fetched over HTTPS (plain `http` only for loopback hosts) with `reqwest`/rustls on first
    /// use, then cached for the response's `Cache-Control: max-age`, clamped to
    /// [60 s, 24 h] (5 min when absent). See the crate docs for the refresh rules.
    Remote {
        /// The `jwks_uri` of the identity provider, e.g. `https://id.example/jwks.json`.
        url: String,
    },
    /// A fixed key set, e.g. read from a file at start-up. Never refreshed.
    Static(JwkSet),
}

impl JwksSource {
    /// A JWKS fetched from `url` (the provider's `jwks_uri`).
    pub fn remote(url: impl Into<String>) -> Self {
        Self::Remote { url: url.into() }
    }

    /// A static JWKS from its JSON text (`{"keys": [...]}`).
    ///
    /// Keys that `jsonwebtoken` cannot represent are skipped rather than failing the whole
    /// set, as a remote JWKS would be; the [`Validator`](crate::Validator) constructor fails
    /// with [`ConfigError::NoUsableKeys`] if nothing usable remains.
    ///
    /// # Errors
    /// [`ConfigError::InvalidJwks`] if the text is not a JSON object with a `keys` array.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        parse_jwk_set(json.as_bytes())
            .map(Self::Static)
            .map_err(ConfigError::InvalidJwks)
    }

    /// A static JWKS read from a JSON file.
    ///
    /// # Errors
    /// [`ConfigError::ReadJwks`] if the file cannot be read, [`ConfigError::InvalidJwks`] as
    /// for [`from_json`](Self::from_json).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadJwks {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&json)
    }
}

impl std::fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Remote { url } => f.debug_struct("Remote").field("url", url).finish(),
            Self::Static(set) => write!(f, "Static({} keys)", set.keys.len()),
        }
    }
}

/// Parses `{"keys": [...]}` leniently: each key on its own, skipping those that do not parse
/// (an unknown key type or a malformed entry must not take the good keys down with it).
pub(crate) fn parse_jwk_set(json: &[u8]) -> Result<JwkSet, serde_json::Error> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let raw: RawSet = serde_json::from_slice(json)?;
    let keys = raw
        .keys
        .into_iter()
        .filter_map(|key| match serde_json::from_value::<Jwk>(key) {
            Ok(jwk) => Some(jwk),
            Err(error) => {
                tracing::debug!(%error, "skipping a JWK that does not parse");
                None
            }
        })
        .collect();
    Ok(JwkSet { keys })
}

/// A public key vetted for signature verification.
#[derive(Clone)]
pub(crate) struct VerificationKey {
    kid: Option<String>,
    kind: KeyKind,
    /// The JWK's own `alg`, if it had one: then only that algorithm is accepted.
    alg: Option<Algorithm>,
    pub(crate) decoding: DecodingKey,
    /// An EC key (ES256, ES384) parsed once, here, rather than on every verification:
    /// checked with aws-lc-rs directly. `None` for other kinds (`decoding` serves them).
    pub(crate) ecdsa: Option<ParsedPublicKey>,
}

impl VerificationKey {
    /// `None` for keys that must be ignored: `use` other than `sig`, `key_ops` without
    /// `verify`, an `alg` we do not verify with, symmetric keys, unsupported curves.
    fn vet(jwk: &Jwk) -> Option<Self> {
        let common = &jwk.common;
        if common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != PublicKeyUse::Signature)
        {
            return None;
        }
        if common
            .key_operations
            .as_ref()
            .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
        {
            return None;
        }
        let alg = match common.key_algorithm {
            None => None,
            Some(alg) => Some(Algorithm::try_from(alg).ok()?),
        };
        let kind = KeyKind::of(jwk)?;
        if alg.is_some_and(|alg| !kind.verifies(alg)) {
            return None;
        }
        let decoding = DecodingKey::from_jwk(jwk).ok()?;
        let ecdsa = parsed_ecdsa(jwk, kind);
        if matches!(kind, KeyKind::EcP256 | KeyKind::EcP384) && ecdsa.is_none() {
            // Coordinates of the wrong size, or not a point of the curve: no key.
            return None;
        }
        Some(Self {
            kid: common.key_id.clone(),
            kind,
            alg,
            decoding,
            ecdsa,
        })
    }

    /// Whether this key may verify a token signed with `alg`: the key type and curve decide,
    /// and the key's own `alg`, if any, must be exactly `alg`.
    fn fits(&self, alg: Algorithm) -> bool {
        self.kind.verifies(alg) && self.alg.is_none_or(|own| own == alg)
    }
}

/// An EC key's uncompressed point `04 ‖ x ‖ y`, parsed for the one algorithm its curve
/// verifies (fixed-size `R ‖ S` signatures, as JWS has them, RFC 7518 §3.4). `None` if it is
/// not an EC key, or its coordinates are not the full size of the curve's field (RFC 7518
/// §6.2.1.2–3), or it is no point of the curve: such an EC key is ignored.
fn parsed_ecdsa(jwk: &Jwk, kind: KeyKind) -> Option<ParsedPublicKey> {
    let AlgorithmParameters::EllipticCurve(ec) = &jwk.algorithm else {
        return None;
    };
    let (algorithm, coordinate_len) = match kind {
        KeyKind::EcP256 => (&ECDSA_P256_SHA256_FIXED, 32),
        KeyKind::EcP384 => (&ECDSA_P384_SHA384_FIXED, 48),
        _ => return None,
    };
    let mut point = vec![0x04];
    for coordinate in [&ec.x, &ec.y] {
        let before = point.len();
        URL_SAFE_NO_PAD.decode_vec(coordinate, &mut point).ok()?;
        if point.len() - before != coordinate_len {
            return None;
        }
    }
    ParsedPublicKey::new(algorithm, point).ok()
}

/// A vetted key set: what the cache holds and what a static source becomes.
#[derive(Clone, Default)]
pub(crate) struct KeySet {
    keys: Vec<VerificationKey>,
}

/// How many keys a token without `kid` may be tried against. Bounded so a kid-less token
/// costs at most a few verifications; an identity provider with more keys than this for one
/// algorithm must put `kid` in its tokens (Ostiary always does).
pub(crate) const MAX_KIDLESS_CANDIDATES: usize = 3;

/// The outcome of looking up the key(s) for a token.
pub(crate) enum Selection<'a> {
    /// Keys to try, in JWKS order (one when the token has a `kid`, unless the JWKS repeats it).
    Candidates(Vec<&'a VerificationKey>),
    /// The `kid` is not in the set, or no key fits a kid-less token: a refetch may help.
    Unknown,
    /// The `kid` is in the set but its key cannot verify this algorithm.
    Mismatch,
}

impl KeySet {
    pub(crate) fn from_jwk_set(set: &JwkSet) -> Self {
        let keys = set
            .keys
            .iter()
            .filter_map(VerificationKey::vet)
            .collect::<Vec<_>>();
        if keys.len() < set.keys.len() {
            tracing::debug!(
                ignored = set.keys.len() - keys.len(),
                "ignored JWKs unfit for signature verification"
            );
        }
        Self { keys }
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The set without the keys whose `kid` is `kid`; `None` if it has none.
    pub(crate) fn without_kid(&self, kid: &str) -> Option<Self> {
        if !self.keys.iter().any(|key| key.kid.as_deref() == Some(kid)) {
            return None;
        }
        Some(Self {
            keys: self
                .keys
                .iter()
                .filter(|key| key.kid.as_deref() != Some(kid))
                .cloned()
                .collect(),
        })
    }

    /// Whether any key can verify any of `algorithms`.
    pub(crate) fn serves_any(&self, algorithms: &[Algorithm]) -> bool {
        self.keys
            .iter()
            .any(|key| algorithms.iter().any(|alg| key.fits(*alg)))
    }

    /// The keys to try for a token with this `kid` and `alg`.
    ///
    /// Without a `kid`, the first [`MAX_KIDLESS_CANDIDATES`] keys that fit `alg` are tried.
    pub(crate) fn select(&self, kid: Option<&str>, alg: Algorithm) -> Selection<'_> {
        match kid {
            Some(kid) => {
                let mut named = self
                    .keys
                    .iter()
                    .filter(|key| key.kid.as_deref() == Some(kid))
                    .peekable();
                if named.peek().is_none() {
                    return Selection::Unknown;
                }
                let fitting: Vec<_> = named.filter(|key| key.fits(alg)).collect();
                if fitting.is_empty() {
                    Selection::Mismatch
                } else {
                    Selection::Candidates(fitting)
                }
            }
            None => {
                let fitting: Vec<_> = self
                    .keys
                    .iter()
                    .filter(|key| key.fits(alg))
                    .take(MAX_KIDLESS_CANDIDATES)
                    .collect();
                if fitting.is_empty() {
                    Selection::Unknown
                } else {
                    Selection::Candidates(fitting)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P256_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const P256_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
    const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn set(json: &str) -> KeySet {
        KeySet::from_jwk_set(&parse_jwk_set(json.as_bytes()).unwrap())
    }

    #[test]
    fn key_type_decides_the_algorithm() {
        let keys = set(&format!(
            r#"{{"keys":[
                {{"kty":"EC","crv":"P-256","x":"{P256_X}","y":"{P256_Y}","kid":"ec"}},
                {{"kty":"OKP","crv":"Ed25519","x":"{ED_X}","kid":"ed"}}
            ]}}"#
        ));
        assert!(
            matches!(keys.select(Some("ec"), Algorithm::ES256), Selection::Candidates(c) if c.len() == 1)
        );
        assert!(matches!(
            keys.select(Some("ec"), Algorithm::ES384),
            Selection::Mismatch
        ));
        assert!(matches!(
            keys.select(Some("ec"), Algorithm::RS256),
            Selection::Mismatch
        ));
        assert!(matches!(
            keys.select(Some("ec"), Algorithm::HS256),
            Selection::Mismatch
        ));
        assert!(matches!(
            keys.select(Some("ed"), Algorithm::EdDSA),
            Selection::Candidates(_)
        ));
        assert!(matches!(
            keys.select(Some("nope"), Algorithm::EdDSA),
            Selection::Unknown
        ));
        assert!(
            matches!(keys.select(None, Algorithm::EdDSA), Selection::Candidates(c) if c.len() == 1)
        );
        assert!(matches!(
            keys.select(None, Algorithm::PS256),
            Selection::Unknown
        ));
    }

    #[test]
    fn unfit_keys_are_ignored_and_unparseable_ones_skipped() {
        // The point `04 ‖ x ‖ y` split one byte off (31 + 33 bytes), and a y off the curve
        // (found by an attack run: jsonwebtoken would join the bytes and verify).
        let point: Vec<u8> = [P256_X, P256_Y]
            .iter()
            .flat_map(|c| URL_SAFE_NO_PAD.decode(c).unwrap())
            .collect();
        let (short_x, long_y) = (
            URL_SAFE_NO_PAD.encode(&point[..31]),
            URL_SAFE_NO_PAD.encode(&point[31..]),
        );
        let mut y = point[32..].to_vec();
        y[31] ^= 1;
        let off_curve_y = URL_SAFE_NO_PAD.encode(y);
        let keys = set(&format!(
            r#"{{"keys":[
                {{"kty":"EC","crv":"P-256","x":"{P256_X}","y":"{P256_Y}","use":"enc"}},
                {{"kty":"EC","crv":"P-256","x":"{P256_X}","y":"{P256_Y}","key_ops":["encrypt"]}},
                {{"kty":"EC","crv":"P-256","x":"{P256_X}","y":"{P256_Y}","alg":"RS256"}},
                {{"kty":"EC","crv":"P-256","x":"{P256_X}","y":"{P256_Y}","alg":"ECDH-ES"}},
                {{"kty":"oct","k":"c2VjcmV0"}},
                {{"kty":"oct","k":"c2VjcmV0","alg":"HS256"}},
                {{"kty":"EC","crv":"P-256","x":7}},
                {{"kty":"RSA","n":"AQAB","e":"AQAB","alg":42}},
                {{"kty":"EC","crv":"P-256","x":"{short_x}","y":"{long_y}"}},
                {{"kty":"EC","crv":"P-256","x":"{P256_X}","y":"{off_curve_y}"}},
                {{"kty":"EC","crv":"P-256","x":"{P256_X}","y":"{P256_Y}","use":"sig","alg":"ES256"}}
            ]}}"#
        ));
        assert_eq!(keys.len(), 1);
        assert!(keys.serves_any(&[Algorithm::ES256]));
        assert!(!keys.serves_any(&[Algorithm::HS256, Algorithm::EdDSA]));
    }

    #[test]
    fn a_kidless_token_tries_only_a_few_keys() {
        let key = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{ED_X}"}}"#);
        let keys = set(&format!(r#"{{"keys":[{}]}}"#, vec![key; 10].join(",")));
        assert!(matches!(
            keys.select(None, Algorithm::EdDSA),
            Selection::Candidates(c) if c.len() == MAX_KIDLESS_CANDIDATES
        ));
    }

    #[test]
    fn a_jwks_document_must_have_a_keys_array() {
        assert!(JwksSource::from_json(r#"{"keys":{}}"#).is_err());
        assert!(JwksSource::from_json("[]").is_err());
        assert!(
            matches!(JwksSource::from_json(r#"{"keys":[]}"#), Ok(JwksSource::Static(s)) if s.keys.is_empty())
        );
    }
}
