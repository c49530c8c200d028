//! Minting access tokens (JWT profile, RFC 9068) and ID tokens (OpenID Connect Core §2), and
//! verifying our own tokens where the IdP consumes them itself (userinfo, revocation,
//! `id_token_hint`).
//!
//! Signing uses the parsed keys of the [`KeyRing`] (aws-lc-rs); the JWS compact serialization
//! (RFC 7515 §7.1) is `base64url(header) "." base64url(claims) "." base64url(signature)`.
//! Verification reads the header and the claims here, as JSON objects without repeated member
//! names (`ostiary_jose::strict_json`), refuses the header members that would change how the token
//! is processed (`crit`, `b64`, `zip`, `enc`), and leaves the signature and `iss` to
//! `jsonwebtoken`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::UnixTime;
use crate::keys::{KeyError, KeyRing, LoadedKey};
use ostiary_jose::strict_json::object_from_slice;

/// `typ` header of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// `typ` header of logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4).
pub const LOGOUT_TOKEN_TYP: &str = "logout+jwt";
/// `typ` header of ID tokens.
pub const ID_TOKEN_TYP: &str = "JWT";

/// Claims of an access token (RFC 9068 §2.2, plus `sid`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user id.
    pub sub: String,
    /// Audience: the resource the token is for and, with the `openid` scope, also the
    /// userinfo endpoint (RFC 9068 §3). One value is written as a string, several as an array.
    pub aud: Audience,
    /// Expiry (Unix seconds).
    pub exp: UnixTime,
    /// Issued at (Unix seconds).
    pub iat: UnixTime,
    /// Unique token id.
    pub jti: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Granted scope, space-separated.
    pub scope: String,
    /// The IdP session the token was minted from.
    pub sid: String,
    /// When the user authenticated (Unix seconds).
    pub auth_time: UnixTime,
    /// The key the token is bound to (RFC 7800 confirmation, RFC 9449 §6.1); absent for a
    /// bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The `cnf` claim of a DPoP-bound token (RFC 9449 §6.1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    /// The JWK SHA-256 thumbprint (RFC 7638) of the key, base64url.
    pub jkt: String,
}

/// The `aud` claim (RFC 7519 §4.1.3): a string when there is one audience, an array otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience(pub Vec<String>);

impl Audience {
    /// Whether `audience` is one of the values.
    pub fn contains(&self, audience: &str) -> bool {
        self.0.iter().any(|a| a == audience)
    }
}

impl Serialize for Audience {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => serializer.serialize_str(one),
            many => many.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(deserializer)? {
            OneOrMany::One(one) => Self(vec![one]),
            OneOrMany::Many(many) => Self(many),
        })
    }
}

/// Claims of an ID token (OpenID Connect Core §2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user id.
    pub sub: String,
    /// Audience: the client id.
    pub aud: String,
    /// Expiry (Unix seconds).
    pub exp: UnixTime,
    /// Issued at (Unix seconds).
    pub iat: UnixTime,
    /// When the user authenticated (Unix seconds).
    pub auth_time: UnixTime,
    /// The `nonce` of the authorization request, if it had one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nonce: Option<String>,
    /// The IdP session.
    pub sid: String,
    /// The username, with the `profile` scope.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub preferred_username: Option<String>,
}

/// Signs `claims` as a JWS compact serialization with `key`.
pub fn sign<T: Serialize>(key: &LoadedKey, typ: &str, claims: &T) -> Result<String, KeyError> {
    let header = serde_json::json!({"alg": key.alg().as_str(), "kid": key.kid(), "typ": typ});
    let header = serde_json::to_vec(&header).map_err(|e| KeyError::from_message(e.to_string()))?;
    let claims = serde_json::to_vec(claims).map_err(|e| KeyError::from_message(e.to_string()))?;
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(claims));
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(token)
}

/// Why one of our own tokens was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OwnTokenError {
    /// Not a JWT, not signed by one of our keys, wrong `typ` or wrong issuer; or a header or
    /// claims set that repeats a member name, or a header with `crit`, `b64`, `zip` or `enc`.
    #[error("not a token issued here")]
    Invalid,
    /// Signed by us but expired.
    #[error("token expired")]
    Expired,
}

/// Header members that [`verify_own`] refuses whatever their value, since Ostiary never writes
/// them and each would change how the token is to be processed:
///
/// - `crit` (RFC 7515 §4.1.11): extensions the recipient must understand; we implement none.
/// - `b64` (RFC 7797 §3): `false` makes the signing input the raw payload; `jsonwebtoken`
///   accepts `"b64": true` with `"crit": ["b64"]`, and a token of ours has neither.
/// - `zip` (RFC 7516 §4.1.3): a compressed payload, so the claims would not be the bytes
///   signed.
/// - `enc` (RFC 7516 §4.1.2): the header of a JWE, not of a signed token.
///
/// The other JWE-only members (`epk`, `apu`, `apv`, `iv`, `tag`, `p2s`, `p2c`) come with a
/// key-management `alg`, which already fails the comparison with our key's algorithm.
const REFUSED_HEADER_MEMBERS: [&str; 4] = ["crit", "b64", "zip", "enc"];

/// Verifies a token we issued: signature with one of our keys (the key's own algorithm),
/// `typ`, `iss`, and — when `check_expiry` — `exp`. The audience is not checked here: the
/// caller knows what it expects.
///
/// The header and the claims must be JSON objects that repeat no member name at any depth
/// (RFC 7515 §5.2, RFC 7519 §7.2), and the header must have no `crit`, `b64`, `zip` or `enc`
/// member, whatever its value (Ostiary never writes them; each would change how the token is
/// to be processed). `jsonwebtoken` then checks the signature, `iss` and the presence of
/// `exp`, `iss` and `sub`; the claims returned are those read here.
///
/// # Errors
/// [`OwnTokenError::Expired`] for a token that passes every check but `exp` (`exp <= now`,
/// no leeway); [`OwnTokenError::Invalid`] for anything else, including a token longer than
/// 8 KiB.
pub fn verify_own<T: serde::de::DeserializeOwned>(
    keys: &KeyRing,
    issuer: &str,
    expected_typ: &str,
    token: &str,
    now: UnixTime,
    check_expiry: bool,
) -> Result<T, OwnTokenError> {
    if token.len() > 8 * 1024 {
        return Err(OwnTokenError::Invalid);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(OwnTokenError::Invalid);
    };
    let header = decode_object(header)?;
    if REFUSED_HEADER_MEMBERS
        .iter()
        .any(|member| header.contains_key(*member))
    {
        return Err(OwnTokenError::Invalid);
    }
    let text = |name: &str| match header.get(name) {
        Some(Value::String(text)) => Some(text.as_str()),
        _ => None,
    };
    let typ_ok = text("typ").is_some_and(|t| {
        t.eq_ignore_ascii_case(expected_typ)
            || t.eq_ignore_ascii_case(&format!("application/{expected_typ}"))
    });
    let kid = text("kid").ok_or(OwnTokenError::Invalid)?;
    let (alg, key) = keys.verifier(kid).ok_or(OwnTokenError::Invalid)?;
    if !typ_ok || text("alg") != Some(alg.as_str()) {
        return Err(OwnTokenError::Invalid);
    }
    let mut validation = jsonwebtoken::Validation::new(alg.to_jsonwebtoken());
    validation.set_issuer(&[issuer]);
    validation.validate_aud = false;
    // Expiry is checked below against the injected clock, not the system clock.
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    jsonwebtoken::decode::<serde::de::IgnoredAny>(token, key, &validation)
        .map_err(|_| OwnTokenError::Invalid)?;
    // The signature is good; read the claims strictly (`jsonwebtoken` keeps the last of
    // repeated members).
    let claims = decode_object(payload)?;
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(OwnTokenError::Invalid)?;
    if check_expiry && exp <= now {
        return Err(OwnTokenError::Expired);
    }
    serde_json::from_value(Value::Object(claims)).map_err(|_| OwnTokenError::Invalid)
}

/// One base64url (unpadded) part of a compact JWS as a JSON object without repeated members.
fn decode_object(part: &str) -> Result<Map<String, Value>, OwnTokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| OwnTokenError::Invalid)?;
    object_from_slice(&bytes).map_err(|_| OwnTokenError::Invalid)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::keys::SigningAlgorithm;

    const ISSUER: &str = "https://id.example";
    const NOW: UnixTime = 1_700_000_000;

    /// A key ring with one ES256 key, and that key.
    fn ring() -> (KeyRing, std::sync::Arc<LoadedKey>) {
        let stored = LoadedKey::generate(SigningAlgorithm::ES256, 0, 0).unwrap();
        let ring = KeyRing::new(&[stored], NOW, 600, None).unwrap();
        let key = ring.signer(SigningAlgorithm::ES256).unwrap().clone();
        (ring, key)
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER, "sub": "alice", "aud": "https://api.example", "exp": NOW + 300,
            "iat": NOW, "jti": "j1", "client_id": "app", "scope": "openid", "sid": "s1",
            "auth_time": NOW,
        })
    }

    /// The exact JSON texts `header` and `claims`, correctly signed by `key`.
    fn signed(key: &LoadedKey, header: &str, claims: &str) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let signature = key.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn header_text(key: &LoadedKey, extra: &str) -> String {
        format!(
            r#"{{"alg":"ES256","kid":"{}","typ":"at+jwt"{extra}}}"#,
            key.kid()
        )
    }

    /// `claims()` as JSON text with `members` appended inside the object.
    fn claims_text(members: &str) -> String {
        let text = claims().to_string();
        format!("{}{members}}}", &text[..text.len() - 1])
    }

    fn verify(ring: &KeyRing, token: &str) -> Result<AccessTokenClaims, OwnTokenError> {
        verify_own(ring, ISSUER, ACCESS_TOKEN_TYP, token, NOW, true)
    }

    #[test]
    fn our_own_tokens_verify_minted_or_written_by_hand() {
        let (ring, key) = ring();
        let minted = sign(&key, ACCESS_TOKEN_TYP, &claims()).unwrap();
        assert_eq!(verify(&ring, &minted).unwrap().sub, "alice");
        let by_hand = signed(&key, &header_text(&key, ""), &claims_text(""));
        assert_eq!(verify(&ring, &by_hand).unwrap().sub, "alice");
        let later = verify_own::<AccessTokenClaims>(
            &ring,
            ISSUER,
            ACCESS_TOKEN_TYP,
            &minted,
            NOW + 300,
            true,
        );
        assert_eq!(later, Err(OwnTokenError::Expired));
    }

    #[test]
    fn a_header_repeating_a_member_is_invalid_even_when_signed() {
        let (ring, key) = ring();
        let kid = key.kid();
        for header in [
            format!(r#"{{"alg":"ES256","kid":"{kid}","kid":"{kid}","typ":"at+jwt"}}"#),
            format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"JWT","typ":"at+jwt"}}"#),
            format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"at+jwt","\u0061lg":"ES256"}}"#),
            header_text(&key, r#","x":{"a":1,"a":2}"#),
            header_text(&key, r#","x":[{"y":{"z":[],"z":[]}}]"#),
        ] {
            let token = signed(&key, &header, &claims_text(""));
            assert_eq!(
                verify(&ring, &token),
                Err(OwnTokenError::Invalid),
                "{header}"
            );
        }
    }

    #[test]
    fn claims_repeating_a_member_are_invalid_even_when_signed() {
        let (ring, key) = ring();
        let header = header_text(&key, "");
        for members in [
            r#","sub":"admin""#,
            r#","s\u0075b":"admin""#,
            r#","client_id":"other""#,
            r#","custom":{"role":"user","role":"admin"}"#,
            r#","list":[{"a":1},{"b":[{"c":1,"c":1}]}]"#,
        ] {
            let token = signed(&key, &header, &claims_text(members));
            assert_eq!(
                verify(&ring, &token),
                Err(OwnTokenError::Invalid),
                "{members}"
            );
        }
        // The same extra claims without repetition are fine.
        let token = signed(&key, &header, &claims_text(r#","custom":{"role":"user"}"#));
        assert!(verify(&ring, &token).is_ok());
    }

    #[test]
    fn b64_zip_enc_and_crit_headers_are_invalid_even_when_signed() {
        let (ring, key) = ring();
        for extra in [
            r#","b64":false"#,
            r#","b64":true"#,
            // What `jsonwebtoken::decode` alone accepts.
            r#","b64":true,"crit":["b64"]"#,
            r#","b64":false,"crit":["b64"]"#,
            r#","crit":["exp"],"exp":1"#,
            r#","zip":"DEF""#,
            r#","enc":"A256GCM""#,
        ] {
            let token = signed(&key, &header_text(&key, extra), &claims_text(""));
            assert_eq!(
                verify(&ring, &token),
                Err(OwnTokenError::Invalid),
                "{extra}"
            );
        }
    }
}
