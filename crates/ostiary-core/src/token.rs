//! Minting access tokens (JWT profile, RFC 9068) and ID tokens (OpenID Connect Core §2), and
//! verifying our own tokens where the IdP consumes them itself (userinfo, revocation,
//! `id_token_hint`).
//!
//! Signing uses the parsed keys of the [`KeyRing`] (aws-lc-rs); the JWS compact serialization
//! (RFC 7515 §7.1) is `base64url(header) "." base64url(claims) "." base64url(signature)`.
//! Verification goes through `jsonwebtoken`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::keys::{KeyError, KeyRing, LoadedKey};

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
    /// Not a JWT, not signed by one of our keys, wrong `typ` or wrong issuer.
    #[error("not a token issued here")]
    Invalid,
    /// Signed by us but expired.
    #[error("token expired")]
    Expired,
}

/// Verifies a token we issued: signature with one of our keys (the key's own algorithm),
/// `typ`, `iss`, and — when `check_expiry` — `exp`. The audience is not checked here: the
/// caller knows what it expects.
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
    let header = jsonwebtoken::decode_header(token).map_err(|_| OwnTokenError::Invalid)?;
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(expected_typ)
            || t.eq_ignore_ascii_case(&format!("application/{expected_typ}"))
    });
    let kid = header.kid.as_deref().ok_or(OwnTokenError::Invalid)?;
    let (alg, key) = keys.verifier(kid).ok_or(OwnTokenError::Invalid)?;
    if !typ_ok || header.alg != alg.to_jsonwebtoken() {
        return Err(OwnTokenError::Invalid);
    }
    let mut validation = jsonwebtoken::Validation::new(alg.to_jsonwebtoken());
    validation.set_issuer(&[issuer]);
    validation.validate_aud = false;
    // Expiry is checked below against the injected clock, not the system clock.
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &validation)
        .map_err(|_| OwnTokenError::Invalid)?;
    let exp = data
        .claims
        .get("exp")
        .and_then(serde_json::Value::as_i64)
        .ok_or(OwnTokenError::Invalid)?;
    if check_expiry && exp <= now {
        return Err(OwnTokenError::Expired);
    }
    serde_json::from_value(data.claims).map_err(|_| OwnTokenError::Invalid)
}
