//! The claims of a JWT access token (RFC 9068 §2.2) and their strict parsing.
//!
//! The validator does not trust serde's derive for the payload: it reads a JSON object and
//! checks each registered claim by hand, so that a claim of the wrong type is reported as
//! [`ValidationError::InvalidClaim`] naming the claim, and an absent one as
//! [`ValidationError::MissingClaim`]. The serde derives on [`AccessTokenClaims`] exist for
//! callers who store or forward validated claims.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::ValidationError;
use ostiary_jose::strict_json::object_from_slice;

/// The claims of a validated access token, as profiled by RFC 9068 §2.2.
///
/// Every registered claim below has been type-checked; any other claim of the payload is kept
/// in [`extra`](Self::extra). Times are NumericDate: seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// Issuer: equals the validator's configured issuer exactly.
    pub iss: String,
    /// Subject: the resource owner, or the client for a client-credentials grant.
    pub sub: String,
    /// Audiences. A JSON string or array of strings on the wire, always a `Vec` here; it
    /// serializes as an array. Contains the validator's configured audience.
    #[serde(deserialize_with = "deserialize_audience")]
    pub aud: Vec<String>,
    /// Expiry time, seconds since the Unix epoch.
    pub exp: i64,
    /// Issued-at time, seconds since the Unix epoch.
    pub iat: i64,
    /// Not-before time, seconds since the Unix epoch, if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Token identifier (RFC 7519 §4.1.7).
    pub jti: String,
    /// The OAuth client the token was issued to (RFC 8693 §4.3).
    pub client_id: String,
    /// Granted scopes, space-separated (RFC 6749 §3.3), if present. See
    /// [`scopes`](Self::scopes) and [`has_scope`](Self::has_scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Session id at the identity provider (OpenID Connect Front-/Back-Channel Logout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// When the end user authenticated, seconds since the Unix epoch, if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// Every other claim of the payload, untouched.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AccessTokenClaims {
    /// The granted scopes, split on spaces (empty when there is no `scope` claim).
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|scope| !scope.is_empty())
    }

    /// The thumbprint of the DPoP key the token is bound to (`cnf.jkt`, RFC 9449 §6.1), if
    /// it is bound.
    pub fn dpop_jkt(&self) -> Option<&str> {
        self.extra.get("cnf")?.get("jkt")?.as_str()
    }

    /// Whether `scope` is one of the granted scopes (exact, case-sensitive match).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|granted| granted == scope)
    }

    /// Reads the claims from a payload whose signature has already been verified.
    ///
    /// Only types and presence are checked here; values (issuer, audience, times) are the
    /// validator's business. A payload that repeats a member name, at any depth, is
    /// [`ValidationError::Malformed`]: RFC 7519 §7.2 allows rejecting it, and keeping the
    /// last one would let two parsers read two different claim sets (`ostiary_jose::strict_json`).
    pub(crate) fn from_payload(payload: &[u8]) -> Result<Self, ValidationError> {
        let mut object = object_from_slice(payload).map_err(|_| ValidationError::Malformed)?;
        let mut take = |name: &str| object.remove(name);

        let iss = required(take("iss"), "iss", string)?;
        let sub = required(take("sub"), "sub", string)?;
        let aud = required(take("aud"), "aud", audience)?;
        let exp = required(take("exp"), "exp", numeric_date)?;
        let iat = required(take("iat"), "iat", numeric_date)?;
        let nbf = optional(take("nbf"), "nbf", numeric_date)?;
        let jti = required(take("jti"), "jti", string)?;
        let client_id = required(take("client_id"), "client_id", string)?;
        let scope = optional(take("scope"), "scope", string)?;
        let sid = optional(take("sid"), "sid", string)?;
        let auth_time = optional(take("auth_time"), "auth_time", numeric_date)?;

        Ok(Self {
            iss,
            sub,
            aud,
            exp,
            iat,
            nbf,
            jti,
            client_id,
            scope,
            sid,
            auth_time,
            extra: object,
        })
    }
}

fn required<T>(
    value: Option<Value>,
    claim: &'static str,
    parse: fn(Value) -> Option<T>,
) -> Result<T, ValidationError> {
    let value = value.ok_or(ValidationError::MissingClaim(claim))?;
    parse(value).ok_or(ValidationError::InvalidClaim(claim))
}

/// An optional claim may be absent, but when present (even as `null`) it must have its type.
fn optional<T>(
    value: Option<Value>,
    claim: &'static str,
    parse: fn(Value) -> Option<T>,
) -> Result<Option<T>, ValidationError> {
    value
        .map(|value| parse(value).ok_or(ValidationError::InvalidClaim(claim)))
        .transpose()
}

fn string(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// `aud`: one string or an array of strings (RFC 7519 §4.1.3).
fn audience(value: Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) => Some(vec![s]),
        Value::Array(items) => items.into_iter().map(string).collect(),
        _ => None,
    }
}

/// NumericDate (RFC 7519 §2): a JSON number of seconds. Integers are taken as they are; a
/// non-integer value is floored (a fraction of a second never extends a lifetime by more
/// than the leeway). Strings, `null`, and numbers outside `i64` are invalid.
fn numeric_date(value: Value) -> Option<i64> {
    let Value::Number(number) = value else {
        return None;
    };
    if let Some(integer) = number.as_i64() {
        return Some(integer);
    }
    if number.is_u64() {
        return None; // above i64::MAX
    }
    let float = number.as_f64()?.floor();
    // `i64::MAX as f64` rounds up to 2^63, so compare with a strict upper bound.
    (float.is_finite() && float >= i64::MIN as f64 && float < i64::MAX as f64)
        .then_some(float as i64)
}

fn deserialize_audience<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(audience) => vec![audience],
        OneOrMany::Many(audiences) => audiences,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn payload(value: Value) -> Vec<u8> {
        serde_json::to_vec(&value).unwrap()
    }

    fn complete() -> Value {
        json!({
            "iss": "https://id.example", "sub": "alice", "aud": "api",
            "exp": 2000, "iat": 1000, "jti": "j1", "client_id": "app",
        })
    }

    #[test]
    fn a_complete_payload_parses_and_keeps_unknown_claims() {
        let mut value = complete();
        value["custom"] = json!({"a": 1});
        value["scope"] = json!("read  write");
        let claims = AccessTokenClaims::from_payload(&payload(value)).unwrap();
        assert_eq!(claims.aud, vec!["api"]);
        assert_eq!(claims.extra.get("custom"), Some(&json!({"a": 1})));
        assert_eq!(claims.scopes().collect::<Vec<_>>(), ["read", "write"]);
        assert!(claims.has_scope("write"));
        assert!(!claims.has_scope("rea"));
    }

    #[test]
    fn numeric_dates_accept_integers_and_floor_fractions_only() {
        assert_eq!(numeric_date(json!(5)), Some(5));
        assert_eq!(numeric_date(json!(-5)), Some(-5));
        assert_eq!(numeric_date(json!(5.9)), Some(5));
        assert_eq!(numeric_date(json!(-0.5)), Some(-1));
        assert_eq!(numeric_date(json!("5")), None);
        assert_eq!(numeric_date(json!(null)), None);
        assert_eq!(numeric_date(json!(u64::MAX)), None);
        assert_eq!(numeric_date(json!(1e300)), None);
    }

    #[test]
    fn each_claim_of_the_wrong_type_is_named() {
        for (claim, bad) in [
            ("iss", json!(1)),
            ("sub", json!(null)),
            ("aud", json!(["api", 7])),
            ("aud", json!({"api": true})),
            ("exp", json!("2000")),
            ("iat", json!(true)),
            ("nbf", json!("0")),
            ("jti", json!(1)),
            ("client_id", json!([])),
            ("scope", json!(["read"])),
            ("sid", json!(3)),
            ("auth_time", json!("yesterday")),
        ] {
            let mut value = complete();
            value[claim] = bad;
            assert_eq!(
                AccessTokenClaims::from_payload(&payload(value)),
                Err(ValidationError::InvalidClaim(claim)),
                "{claim}"
            );
        }
    }

    #[test]
    fn each_required_claim_is_required() {
        for claim in ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"] {
            let mut value = complete();
            value.as_object_mut().unwrap().remove(claim);
            assert_eq!(
                AccessTokenClaims::from_payload(&payload(value)),
                Err(ValidationError::MissingClaim(claim)),
                "{claim}"
            );
        }
    }

    #[test]
    fn a_payload_that_is_not_an_object_is_malformed() {
        for bad in [&b"[1]"[..], b"\"x\"", b"{", b""] {
            assert_eq!(
                AccessTokenClaims::from_payload(bad),
                Err(ValidationError::Malformed)
            );
        }
    }

    #[test]
    fn a_payload_repeating_a_member_name_is_malformed() {
        let complete = payload(complete());
        let inner = &complete[1..complete.len() - 1];
        for extra in [
            &br#""sub":"mallory""#[..],
            br#""\u0073ub":"mallory""#,
            br#""custom":{"role":"user","role":"admin"}"#,
            br#""list":[{"a":1},{"b":[{"c":1,"c":1}]}]"#,
        ] {
            let mut text = b"{".to_vec();
            text.extend_from_slice(inner);
            text.push(b',');
            text.extend_from_slice(extra);
            text.push(b'}');
            assert_eq!(
                AccessTokenClaims::from_payload(&text),
                Err(ValidationError::Malformed),
                "{}",
                String::from_utf8_lossy(&text)
            );
        }
    }

    #[test]
    fn serde_round_trip_writes_aud_as_an_array_and_reads_a_string() {
        let claims = AccessTokenClaims::from_payload(&payload(complete())).unwrap();
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!(json["aud"], json!(["api"]));
        assert!(json.get("nbf").is_none());
        let back: AccessTokenClaims = serde_json::from_value(complete()).unwrap();
        assert_eq!(back, claims);
    }
}
