//! The compact JWS serialization (RFC 7515 §7.1) taken apart, and the protected header read
//! by hand rather than through `jsonwebtoken::decode_header`, so that every member that
//! matters (`alg`, `typ`, `crit`, `kid`) is checked here and the ones that must never be
//! used (`jwk`, `jku`, `x5u`, `x5c`) are simply not read.
//!
//! The header is a JSON object without duplicate member names (`ostiary_jose::strict_json`).
//!
//! # Header parameters that are refused
//!
//! The validator computes the signature one way only: over `base64url(header) "."
//! base64url(payload)`, the payload being the claims as JSON. A header member that asks for
//! anything else is refused, with or without `crit`, rather than ignored, since ignoring it
//! means reading claims out of bytes the signer meant differently:
//!
//! - `crit` (RFC 7515 §4.1.11): extensions the recipient must understand; none is
//!   understood, so any `crit` is [`ValidationError::UnsupportedCrit`].
//! - `b64` (RFC 7797 §3), any value: `false` makes the signing input the raw payload, and
//!   RFC 7797 §6 requires it to be listed in `crit`; `true` is the default spelled out, but
//!   is only meaningful together with `crit` too. [`ValidationError::UnsupportedHeader`].
//! - `zip` (RFC 7516 §4.1.3): the payload is compressed. Defined for JWE only, yet some JWS
//!   producers use it; either way the claims would not be the bytes signed.
//!   [`ValidationError::UnsupportedHeader`].
//! - `enc` (RFC 7516 §4.1.2): the header of a JWE (RFC 7516 §9 tells JWS from JWE by it), not
//!   of a signed token. [`ValidationError::UnsupportedHeader`].
//!
//! The other JWE-only parameters (`epk`, `apu`, `apv`, `iv`, `tag`, `p2s`, `p2c`, RFC 7518
//! §4.6–4.8) are not on the list: they accompany a key-management `alg`, which the allow-list
//! already refuses, and change nothing in how a signature is computed, so they are ignored as
//! any unknown member is. `cty` is ignored too: a nested JWT would not be a JSON payload.

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde_json::{Map, Value};

use crate::ValidationError;
use ostiary_jose::strict_json::object_from_slice;

/// Header members that change how the token would have to be processed (see the module
/// docs): refused whatever their value, [`ValidationError::UnsupportedHeader`].
const REFUSED_HEADER_MEMBERS: [&str; 3] = ["b64", "zip", "enc"];

/// A token split into its three parts, header and payload decoded but not yet trusted.
pub(crate) struct CompactToken<'a> {
    /// `base64url(header) "." base64url(payload)`: the bytes the signature covers.
    pub(crate) signing_input: &'a str,
    /// The third part, still base64url-encoded (as `jsonwebtoken::crypto::verify` wants it).
    pub(crate) signature: &'a str,
    /// The third part decoded.
    pub(crate) signature_bytes: Vec<u8>,
    pub(crate) header: Map<String, Value>,
    pub(crate) payload: Vec<u8>,
}

impl<'a> CompactToken<'a> {
    /// Splits and decodes. The caller has already enforced the size limit.
    pub(crate) fn parse(token: &'a str) -> Result<Self, ValidationError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ValidationError::Malformed);
        };
        let signing_input = &token[..header.len() + 1 + payload.len()];

        // The standard engine already rejects padding and non-canonical trailing bits; an
        // empty signature (what `alg: none` tokens carry) is malformed too.
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| ValidationError::Malformed)
        };
        let header = decode(header)?;
        let payload = decode(payload)?;
        let signature_bytes = decode(signature)?;
        if signature_bytes.is_empty() {
            return Err(ValidationError::Malformed);
        }
        let header = object_from_slice(&header).map_err(|_| ValidationError::Malformed)?;

        Ok(Self {
            signing_input,
            signature,
            signature_bytes,
            header,
            payload,
        })
    }
}

/// The header members the validator acts on, already checked.
#[derive(Debug)]
pub(crate) struct CheckedHeader {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
}

/// Checks `alg` against the allow-list, refuses `crit`, `b64`, `zip` and `enc`, requires
/// `typ: at+jwt`.
///
/// Order matters only for which error a doubly-bad token gets; `alg` comes first because it
/// is the most security-relevant.
pub(crate) fn check_header(
    header: &Map<String, Value>,
    allowed: &[Algorithm],
) -> Result<CheckedHeader, ValidationError> {
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg,
        Some(_) => return Err(ValidationError::Malformed),
        None => return Err(ValidationError::AlgorithmNotAllowed),
    };
    // `none` and unknown names do not parse; HMAC is refused even if it were listed (the
    // constructor already forbids listing it).
    let alg = Algorithm::from_str(alg).map_err(|_| ValidationError::AlgorithmNotAllowed)?;
    if alg.family() == AlgorithmFamily::Hmac || !allowed.contains(&alg) {
        return Err(ValidationError::AlgorithmNotAllowed);
    }

    // RFC 7515 §4.1.11: a recipient that does not understand a listed extension must reject.
    // We understand none, so any `crit` (even an empty or ill-typed one) is refused.
    if header.contains_key("crit") {
        return Err(ValidationError::UnsupportedCrit);
    }
    if REFUSED_HEADER_MEMBERS
        .iter()
        .any(|member| header.contains_key(*member))
    {
        return Err(ValidationError::UnsupportedHeader);
    }

    // RFC 9068 §4: `typ` must be "at+jwt" (or the full media type); media types are
    // case-insensitive. This keeps ID tokens and other JWTs from passing as access tokens.
    match header.get("typ") {
        Some(Value::String(typ))
            if typ.eq_ignore_ascii_case("at+jwt")
                || typ.eq_ignore_ascii_case("application/at+jwt") => {}
        _ => return Err(ValidationError::WrongType),
    }

    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(ValidationError::Malformed),
    };

    Ok(CheckedHeader { alg, kid })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn header(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    const ES: &[Algorithm] = &[Algorithm::ES256];

    #[test]
    fn typ_is_compared_case_insensitively() {
        for typ in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/AT+JWT",
        ] {
            let checked = check_header(&header(json!({"alg": "ES256", "typ": typ})), ES).unwrap();
            assert_eq!(checked.alg, Algorithm::ES256);
        }
        for typ in [json!("JWT"), json!("at+jwt "), json!(1), json!(null)] {
            let result = check_header(&header(json!({"alg": "ES256", "typ": typ})), ES);
            assert_eq!(result.unwrap_err(), ValidationError::WrongType);
        }
    }

    #[test]
    fn alg_none_hmac_and_unknown_names_are_not_allowed() {
        let hs = [Algorithm::HS256, Algorithm::ES256];
        for alg in [
            json!("none"),
            json!("None"),
            json!("HS256"),
            json!("ES512"),
            json!("es256"),
        ] {
            let result = check_header(&header(json!({"alg": alg, "typ": "at+jwt"})), &hs);
            assert_eq!(result.unwrap_err(), ValidationError::AlgorithmNotAllowed);
        }
        let missing = check_header(&header(json!({"typ": "at+jwt"})), ES);
        assert_eq!(missing.unwrap_err(), ValidationError::AlgorithmNotAllowed);
    }

    #[test]
    fn any_crit_is_refused() {
        for crit in [json!(["exp"]), json!([]), json!(null)] {
            let result = check_header(
                &header(json!({"alg": "ES256", "typ": "at+jwt", "crit": crit})),
                ES,
            );
            assert_eq!(result.unwrap_err(), ValidationError::UnsupportedCrit);
        }
    }

    #[test]
    fn members_that_change_the_processing_are_refused_whatever_their_value() {
        for (member, value) in [
            ("b64", json!(false)),
            ("b64", json!(true)),
            ("b64", json!("false")),
            ("b64", json!(null)),
            ("zip", json!("DEF")),
            ("zip", json!("")),
            ("enc", json!("A256GCM")),
        ] {
            let mut value_header = header(json!({"alg": "ES256", "typ": "at+jwt"}));
            value_header.insert(member.to_owned(), value.clone());
            let result = check_header(&value_header, ES);
            assert_eq!(
                result.unwrap_err(),
                ValidationError::UnsupportedHeader,
                "{member}: {value}"
            );
        }
        // Listed in `crit`, as RFC 7797 wants: still refused, as `crit`.
        let listed =
            header(json!({"alg": "ES256", "typ": "at+jwt", "b64": false, "crit": ["b64"]}));
        assert_eq!(
            check_header(&listed, ES).unwrap_err(),
            ValidationError::UnsupportedCrit
        );
        // JWE key-management members alone are ignored like any unknown member.
        let ignored = header(json!({"alg": "ES256", "typ": "at+jwt", "epk": {}, "cty": "JWT"}));
        assert!(check_header(&ignored, ES).is_ok());
    }

    #[test]
    fn a_header_with_a_repeated_member_is_malformed() {
        let p = URL_SAFE_NO_PAD.encode(b"{}");
        for header in [
            &br#"{"alg":"ES256","typ":"at+jwt","alg":"ES256"}"#[..],
            br#"{"alg":"ES256","kid":"a","kid":"b"}"#,
            br#"{"alg":"ES256","jwk":{"kty":"EC","kty":"RSA"}}"#,
        ] {
            let token = format!("{}.{p}.c2ln", URL_SAFE_NO_PAD.encode(header));
            assert!(
                matches!(CompactToken::parse(&token), Err(ValidationError::Malformed)),
                "{}",
                String::from_utf8_lossy(header)
            );
        }
    }

    #[test]
    fn parts_must_be_three_unpadded_base64url_strings() {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#);
        let p = URL_SAFE_NO_PAD.encode(b"{}");
        assert!(CompactToken::parse(&format!("{h}.{p}.c2ln")).is_ok());
        for bad in [
            format!("{h}.{p}"),
            format!("{h}.{p}.c2ln.c2ln"),
            format!("{h}.{p}."),
            format!("{h}.{p}.c2lnbg=="),
            format!("{h}.{p}.c2l+"),
            format!("{h}=.{p}.c2ln"),
            format!("{p}.{p}.c2ln").replace('e', "\u{e9}"),
            format!("{}.{p}.c2ln", URL_SAFE_NO_PAD.encode(b"[1]")),
            String::new(),
        ] {
            assert!(
                matches!(CompactToken::parse(&bad), Err(ValidationError::Malformed)),
                "{bad}"
            );
        }
    }
}
