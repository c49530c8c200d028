//! The rules of validation, one by one, against a static JWKS.

use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ostiary_verify::{Algorithm, ConfigError, JwksSource, ValidationError, Validator};
use serde_json::json;

use crate::harness::*;

fn reason(result: Result<ostiary_verify::AccessTokenClaims, ValidationError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(error) => error.reason(),
    }
}

#[tokio::test]
async fn valid_es256_eddsa_and_rs256_tokens_are_accepted() {
    let (es, ed, rs) = (
        TestKey::es256("es"),
        TestKey::ed25519("ed"),
        TestKey::rs256("rs"),
    );
    let validator = static_validator(&[&es, &ed, &rs]);
    for key in [&es, &ed, &rs] {
        let claims = validator.validate(&key.token(&claims())).await.unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.aud, vec![AUDIENCE]);
        assert_eq!(claims.client_id, "demo-spa");
        assert!(claims.has_scope("profile"));
    }
}

#[tokio::test]
async fn extra_claims_are_kept() {
    let key = TestKey::ed25519("ed");
    let validator = static_validator(&[&key]);
    let token = key.token(&claims_with("tenant", Some(json!("acme"))));
    let claims = validator.validate(&token).await.unwrap();
    assert_eq!(claims.extra["tenant"], "acme");
}

#[tokio::test]
async fn a_token_without_kid_is_tried_against_the_keys_that_fit() {
    let (first, second) = (TestKey::es256("one"), TestKey::es256("two"));
    let validator = static_validator(&[&first, &second]);
    let header = json!({ "alg": "ES256", "typ": "at+jwt" });
    assert_eq!(
        reason(
            validator
                .validate(&second.token_with_header(&header, &claims()))
                .await
        ),
        "ok"
    );
    let stranger = TestKey::es256("three");
    assert_eq!(
        reason(
            validator
                .validate(&stranger.token_with_header(&header, &claims()))
                .await
        ),
        "bad_signature"
    );
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let key = TestKey::es256("es");
    let validator = static_validator(&[&key]);
    let header = json!({ "alg": "none", "typ": "at+jwt", "kid": "es" });
    // The classic form: empty signature.
    let unsigned = sign_with(&header, &claims(), |_| Vec::new());
    assert!(unsigned.ends_with('.'));
    assert_eq!(reason(validator.validate(&unsigned).await), "malformed");
    // With some bytes in the signature, the algorithm itself is refused.
    let garnished = sign_with(&header, &claims(), |_| b"x".to_vec());
    assert_eq!(
        reason(validator.validate(&garnished).await),
        "algorithm_not_allowed"
    );
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_rejected() {
    let rsa = TestKey::rs256("rs");
    let validator = static_validator(&[&rsa]);
    let header = json!({ "alg": "HS256", "typ": "at+jwt", "kid": "rs" });
    let n = rsa.jwk["n"].as_str().unwrap().to_owned();
    for secret in [
        rsa.public_key_bytes(),
        n.into_bytes(),
        jwks_json(&[&rsa]).into_bytes(),
    ] {
        let forged = sign_with(&header, &claims(), |input| {
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &secret), input)
                .as_ref()
                .to_vec()
        });
        assert_eq!(
            reason(validator.validate(&forged).await),
            "algorithm_not_allowed"
        );
    }
}

#[test]
fn hmac_algorithms_cannot_be_allowed() {
    let key = TestKey::rs256("rs");
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let jwks = JwksSource::from_json(&jwks_json(&[&key])).unwrap();
        let result = Validator::new(ISSUER, AUDIENCE, &[Algorithm::RS256, alg], jwks);
        assert!(matches!(result, Err(ConfigError::SymmetricAlgorithm(a)) if a == alg));
    }
}

#[test]
fn issuer_audience_and_algorithms_are_required() {
    let key = TestKey::ed25519("ed");
    let jwks = || JwksSource::from_json(&jwks_json(&[&key])).unwrap();
    let alg = &[Algorithm::EdDSA];
    assert!(matches!(
        Validator::new("", AUDIENCE, alg, jwks()),
        Err(ConfigError::EmptyIssuer)
    ));
    assert!(matches!(
        Validator::new(ISSUER, "", alg, jwks()),
        Err(ConfigError::EmptyAudience)
    ));
    assert!(matches!(
        Validator::new(ISSUER, AUDIENCE, &[], jwks()),
        Err(ConfigError::NoAlgorithms)
    ));
}

#[test]
fn a_static_jwks_without_a_key_for_the_allowed_algorithms_is_refused() {
    let key = TestKey::ed25519("ed");
    let jwks = JwksSource::from_json(&jwks_json(&[&key])).unwrap();
    let result = Validator::new(ISSUER, AUDIENCE, &[Algorithm::ES256], jwks);
    assert!(matches!(result, Err(ConfigError::NoUsableKeys)));
    let symmetric =
        JwksSource::from_json(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"HS256"}]}"#).unwrap();
    let result = Validator::new(ISSUER, AUDIENCE, ALL_ALGORITHMS, symmetric);
    assert!(matches!(result, Err(ConfigError::NoUsableKeys)));
}

#[tokio::test]
async fn a_jwks_file_can_be_loaded() {
    let key = TestKey::ed25519("ed");
    let path =
        std::env::temp_dir().join(format!("ostiary-verify-jwks-{}.json", std::process::id()));
    std::fs::write(&path, jwks_json(&[&key])).unwrap();
    let jwks = JwksSource::from_file(&path);
    std::fs::remove_file(&path).unwrap();
    let validator = Validator::new(ISSUER, AUDIENCE, &[Algorithm::EdDSA], jwks.unwrap()).unwrap();
    assert_eq!(
        reason(validator.validate_at(&key.token(&claims()), NOW).await),
        "ok"
    );
    assert!(matches!(
        JwksSource::from_file(&path),
        Err(ConfigError::ReadJwks { .. })
    ));
}

#[tokio::test]
async fn an_algorithm_outside_the_allow_list_is_rejected() {
    let (es, rs) = (TestKey::es256("es"), TestKey::rs256("rs"));
    let jwks = JwksSource::from_json(&jwks_json(&[&es, &rs])).unwrap();
    let validator = Validator::new(ISSUER, AUDIENCE, &[Algorithm::ES256], jwks).unwrap();
    assert_eq!(
        reason(validator.validate_at(&es.token(&claims()), NOW).await),
        "ok"
    );
    assert_eq!(
        reason(validator.validate_at(&rs.token(&claims()), NOW).await),
        "algorithm_not_allowed"
    );
    // Known to jsonwebtoken but not listed, and unknown names.
    for alg in ["PS256", "ES384", "ES512", "RSA-OAEP", ""] {
        let header = json!({ "alg": alg, "typ": "at+jwt", "kid": "es" });
        let token = es.token_with_header(&header, &claims());
        assert_eq!(
            reason(validator.validate_at(&token, NOW).await),
            "algorithm_not_allowed",
            "{alg}"
        );
    }
}

#[tokio::test]
async fn an_algorithm_that_does_not_match_the_key_type_is_rejected() {
    let (es, rs) = (TestKey::es256("es"), TestKey::rs256("rs"));
    let validator = static_validator(&[&es, &rs]);
    // ES256 claimed, but the kid names the RSA key.
    let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": "rs" });
    assert_eq!(
        reason(
            validator
                .validate(&es.token_with_header(&header, &claims()))
                .await
        ),
        "key_mismatch"
    );
    // RS256 claimed with the EC key's kid.
    let header = json!({ "alg": "RS256", "typ": "at+jwt", "kid": "es" });
    assert_eq!(
        reason(
            validator
                .validate(&rs.token_with_header(&header, &claims()))
                .await
        ),
        "key_mismatch"
    );
    // EdDSA claimed with an EC key: the curve decides.
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "es" });
    assert_eq!(
        reason(
            validator
                .validate(&es.token_with_header(&header, &claims()))
                .await
        ),
        "key_mismatch"
    );
}

#[tokio::test]
async fn the_jwk_alg_must_equal_the_token_alg() {
    let mut rs = TestKey::rs256("rs");
    rs.jwk["alg"] = json!("PS256");
    let jwks = JwksSource::from_json(&jwks_json(&[&rs])).unwrap();
    let validator = Validator::new(
        ISSUER,
        AUDIENCE,
        &[Algorithm::RS256, Algorithm::PS256],
        jwks,
    )
    .unwrap();
    assert_eq!(
        reason(validator.validate_at(&rs.token(&claims()), NOW).await),
        "key_mismatch"
    );
}

#[tokio::test]
async fn keys_meant_for_encryption_are_ignored() {
    let mut es = TestKey::es256("es");
    es.jwk["use"] = json!("enc");
    let backup = TestKey::ed25519("ed");
    let validator = static_validator(&[&es, &backup]);
    assert_eq!(
        reason(validator.validate(&es.token(&claims())).await),
        "unknown_key"
    );
}

#[tokio::test]
async fn an_attacker_key_in_the_jwk_header_is_never_used() {
    let legit = TestKey::es256("legit");
    let attacker = TestKey::es256("attacker");
    let validator = static_validator(&[&legit]);
    let mut header = json!({ "alg": "ES256", "typ": "at+jwt", "jwk": attacker.jwk });
    // Without kid, only the JWKS keys are tried.
    assert_eq!(
        reason(
            validator
                .validate(&attacker.token_with_header(&header, &claims()))
                .await
        ),
        "bad_signature"
    );
    // With the attacker's kid, the key is unknown.
    header["kid"] = json!("attacker");
    assert_eq!(
        reason(
            validator
                .validate(&attacker.token_with_header(&header, &claims()))
                .await
        ),
        "unknown_key"
    );
    // With the legitimate kid, the signature does not verify.
    header["kid"] = json!("legit");
    assert_eq!(
        reason(
            validator
                .validate(&attacker.token_with_header(&header, &claims()))
                .await
        ),
        "bad_signature"
    );
}

#[tokio::test]
async fn a_signature_by_another_key_with_the_same_kid_is_bad() {
    let legit = TestKey::ed25519("k1");
    let impostor = TestKey::ed25519("k1");
    let validator = static_validator(&[&legit]);
    assert_eq!(
        reason(validator.validate(&impostor.token(&claims())).await),
        "bad_signature"
    );
}

#[tokio::test]
async fn crit_is_refused() {
    let key = TestKey::es256("es");
    let validator = static_validator(&[&key]);
    for crit in [json!(["exp"]), json!(["b64"]), json!([])] {
        let header =
            json!({ "alg": "ES256", "typ": "at+jwt", "kid": "es", "crit": crit, "exp": 1 });
        assert_eq!(
            reason(
                validator
                    .validate(&key.token_with_header(&header, &claims()))
                    .await
            ),
            "unsupported_crit"
        );
    }
}

#[tokio::test]
async fn typ_must_be_at_jwt() {
    let key = TestKey::es256("es");
    let validator = static_validator(&[&key]);
    for (typ, expected) in [
        (Some("at+jwt"), "ok"),
        (Some("AT+JWT"), "ok"),
        (Some("application/at+jwt"), "ok"),
        (Some("JWT"), "wrong_type"),
        (Some("application/jwt"), "wrong_type"),
        (Some("at+jwt; x=y"), "wrong_type"),
        (None, "wrong_type"),
    ] {
        let mut header = key.header();
        match typ {
            Some(typ) => header["typ"] = json!(typ),
            None => {
                header.as_object_mut().unwrap().remove("typ");
            }
        }
        assert_eq!(
            reason(
                validator
                    .validate(&key.token_with_header(&header, &claims()))
                    .await
            ),
            expected,
            "{typ:?}"
        );
    }
}

#[tokio::test]
async fn exp_is_required_as_a_number() {
    let key = TestKey::es256("es");
    let validator = static_validator(&[&key]);
    let cases = [
        (None, "missing_claim"),
        (Some(json!(null)), "invalid_claim"),
        (Some(json!((NOW + 300).to_string())), "invalid_claim"),
        (Some(json!([NOW + 300])), "invalid_claim"),
        (Some(json!(NOW as f64 + 300.75)), "ok"),
    ];
    for (exp, expected) in cases {
        let token = key.token(&claims_with("exp", exp.clone()));
        let result = validator.validate(&token).await;
        assert_eq!(reason(result.clone()), expected, "{exp:?}");
        if let Err(error) = result {
            assert!(error.to_string().contains("exp"), "{error}");
        }
    }
}

#[tokio::test]
async fn exp_in_the_past_is_expired_beyond_the_leeway() {
    let key = TestKey::es256("es");
    let validator = static_validator(&[&key]);
    // Default leeway 30 s: expired once `exp <= now - 30`.
    let at = |exp: i64| key.token(&claims_with("exp", Some(json!(exp))));
    assert_eq!(reason(validator.validate(&at(NOW - 29)).await), "ok");
    assert_eq!(reason(validator.validate(&at(NOW - 30)).await), "expired");
    assert_eq!(reason(validator.validate(&at(NOW - 3600)).await), "expired");

    let strict = validator.clone().with_leeway(Duration::ZERO);
    assert_eq!(reason(strict.validate(&at(NOW + 1)).await), "ok");
    assert_eq!(reason(strict.validate(&at(NOW)).await), "expired");
}

#[tokio::test]
async fn validate_reads_the_injected_clock() {
    let key = TestKey::es256("es");
    let clock = TestClock::at(NOW);
    let validator = static_validator(&[&key]).with_clock(clock.clone());
    let token = key.token(&claims());
    assert_eq!(reason(validator.validate(&token).await), "ok");
    clock.advance(300 + 30);
    assert_eq!(reason(validator.validate(&token).await), "expired");
    assert_eq!(reason(validator.validate_at(&token, NOW).await), "ok");
}

#[tokio::test]
async fn nbf_and_iat_in_the_future_are_not_yet_valid() {
    let key = TestKey::es256("es");
    let validator = static_validator(&[&key]);
    for claim in ["nbf", "iat"] {
        let at = |t: i64| key.token(&claims_with(claim, Some(json!(t))));
        assert_eq!(
            reason(validator.validate(&at(NOW + 30)).await),
            "ok",
            "{claim}"
        );
        let result = validator.validate(&at(NOW + 31)).await;
        assert_eq!(result.unwrap_err(), ValidationError::NotYetValid(claim));
    }
    let missing_iat = key.token(&claims_with("iat", None));
    assert_eq!(
        validator.validate(&missing_iat).await.unwrap_err(),
        ValidationError::MissingClaim("iat")
    );
}

#[tokio::test]
async fn aud_may_be_a_string_or_an_array_and_must_contain_the_audience() {
    let key = TestKey::es256("es");
    let validator = static_validator(&[&key]);
    for (aud, expected) in [
        (json!(AUDIENCE), "ok"),
        (json!([AUDIENCE]), "ok"),
        (json!(["https://other.example", AUDIENCE]), "ok"),
        (json!("https://other.example"), "wrong_audience"),
        (json!(["https://other.example"]), "wrong_audience"),
        (json!([]), "wrong_audience"),
        (json!(format!("{AUDIENCE}/")), "wrong_audience"),
        (json!([AUDIENCE, 1]), "invalid_claim"),
        (json!({ "aud": AUDIENCE }), "invalid_claim"),
    ] {
        let token = key.token(&claims_with("aud", Some(aud.clone())));
        assert_eq!(reason(validator.validate(&token).await), expected, "{aud}");
    }
}

#[tokio::test]
async fn iss_must_match_exactly() {
    let key = TestKey::es256("es");
    let validator = static_validator(&[&key]);
    for iss in [
        json!(format!("{ISSUER}/")),
        json!("https://ID.example"),
        json!("http://id.example"),
        json!(format!(" {ISSUER}")),
        json!("https://evil.example"),
    ] {
        let token = key.token(&claims_with("iss", Some(iss.clone())));
        assert_eq!(
            reason(validator.validate(&token).await),
            "wrong_issuer",
            "{iss}"
        );
    }
    let token = key.token(&claims_with("iss", Some(json!([ISSUER]))));
    assert_eq!(reason(validator.validate(&token).await), "invalid_claim");
}

#[tokio::test]
async fn other_required_claims_are_checked_by_name() {
    let key = TestKey::ed25519("ed");
    let validator = static_validator(&[&key]);
    for claim in ["sub", "client_id", "jti"] {
        let token = key.token(&claims_with(claim, None));
        assert_eq!(
            validator.validate(&token).await.unwrap_err(),
            ValidationError::MissingClaim(claim)
        );
        let token = key.token(&claims_with(claim, Some(json!(42))));
        assert_eq!(
            validator.validate(&token).await.unwrap_err(),
            ValidationError::InvalidClaim(claim)
        );
    }
    let token = key.token(&claims_with("scope", Some(json!(["openid"]))));
    assert_eq!(
        validator.validate(&token).await.unwrap_err(),
        ValidationError::InvalidClaim("scope")
    );
}

#[tokio::test]
async fn a_tampered_payload_is_a_bad_signature_even_when_also_expired() {
    let key = TestKey::es256("es");
    let validator = static_validator(&[&key]);
    let expired = key.token(&claims_with("exp", Some(json!(NOW - 3600))));
    assert_eq!(reason(validator.validate(&expired).await), "expired");

    let parts: Vec<&str> = expired.split('.').collect();
    let mut forged_claims = claims_with("exp", Some(json!(NOW - 3600)));
    forged_claims["sub"] = json!("mallory");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(forged_claims.to_string()),
        parts[2]
    );
    assert_eq!(reason(validator.validate(&tampered).await), "bad_signature");

    // Tampered header (typ still fine) and truncated signature too.
    let mut header = key.header();
    header["extra"] = json!(1);
    let tampered = format!("{}.{}.{}", b64(header.to_string()), parts[1], parts[2]);
    assert_eq!(reason(validator.validate(&tampered).await), "bad_signature");
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let truncated = format!("{}.{}.{}", parts[0], parts[1], b64(&signature[..60]));
    assert_eq!(
        reason(validator.validate(&truncated).await),
        "bad_signature"
    );
}

#[tokio::test]
async fn an_oversized_token_is_rejected_before_parsing() {
    let key = TestKey::ed25519("ed");
    let validator = static_validator(&[&key]);
    let garbage = "a".repeat(16 * 1024 + 1);
    assert_eq!(reason(validator.validate(&garbage).await), "too_large");

    let big = key.token(&claims_with("padding", Some(json!("x".repeat(16 * 1024)))));
    assert_eq!(reason(validator.validate(&big).await), "too_large");
    let roomy = validator.clone().with_max_token_size(64 * 1024);
    assert_eq!(reason(roomy.validate(&big).await), "ok");

    let just_fits = "a".repeat(16 * 1024);
    assert_eq!(reason(validator.validate(&just_fits).await), "malformed");
}

#[tokio::test]
async fn garbage_is_malformed() {
    let key = TestKey::ed25519("ed");
    let validator = static_validator(&[&key]);
    let good = key.token(&claims());
    let parts: Vec<&str> = good.split('.').collect();
    for bad in [
        String::new(),
        "abc".to_owned(),
        "..".to_owned(),
        "a.b.c".to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.{}", parts[2]),
        format!("{good}="),
        format!(" {good}"),
        format!("{}.{}.{}", b64("not json"), parts[1], parts[2]),
        format!("{}.{}.{}", b64("[\"alg\"]"), parts[1], parts[2]),
        format!(
            "{}.{}.{}",
            parts[0],
            parts[1].replace(|c: char| c.is_ascii_alphanumeric(), "+"),
            parts[2]
        ),
        "\u{0}\u{1}\u{ff}.\u{fe}.\u{7f}".to_owned(),
    ] {
        assert_eq!(
            reason(validator.validate(&bad).await),
            "malformed",
            "{bad:?}"
        );
    }
    // A signed payload that is not a JSON object is malformed too (after the signature).
    let header = key.header();
    let array = sign_with(&header, &json!([1, 2]), |input| key.sign(input));
    assert_eq!(reason(validator.validate(&array).await), "malformed");
}

#[tokio::test]
async fn errors_never_echo_the_token() {
    let key = TestKey::es256("es");
    let validator = static_validator(&[&key]);
    let secret_kid = "kid-SECRETVALUE";
    let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": secret_kid });
    let token = key.token_with_header(&header, &claims_with("sub", Some(json!("SECRETVALUE"))));
    let error = validator.validate(&token).await.unwrap_err();
    assert_eq!(error.reason(), "unknown_key");
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains("SECRETVALUE"), "{text}");
        assert!(!text.contains(&token[..20]), "{text}");
    }
}

#[tokio::test]
async fn debug_shows_issuer_and_audience_but_no_keys() {
    let (es, rs) = (TestKey::es256("es"), TestKey::rs256("rs"));
    let validator = static_validator(&[&es, &rs]);
    let debug = format!("{validator:?}");
    assert!(
        debug.contains(ISSUER) && debug.contains(AUDIENCE),
        "{debug}"
    );
    for secretish in [
        es.jwk["x"].as_str().unwrap(),
        &rs.jwk["n"].as_str().unwrap()[..16],
    ] {
        assert!(!debug.contains(secretish), "{debug}");
    }
}

#[test]
fn the_validator_is_clone_send_sync_and_debug() {
    fn assert_traits<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
    assert_traits::<Validator>();
}

/// `claims()` as JSON text with `members` appended inside the object.
fn claims_text_with(members: &str) -> String {
    let text = claims().to_string();
    format!("{},{members}}}", &text[..text.len() - 1])
}

#[tokio::test]
async fn a_header_repeating_a_member_is_malformed_even_when_signed() {
    let key = TestKey::es256("es");
    let validator = static_validator(&[&key]);
    let claims = claims().to_string();
    let signed = |header: &str| key.token_from_json(header, &claims);
    assert_eq!(
        reason(
            validator
                .validate(&signed(r#"{"alg":"ES256","typ":"at+jwt","kid":"es"}"#))
                .await
        ),
        "ok",
        "the same header without duplicates is fine"
    );
    for header in [
        // Even with the same value twice.
        r#"{"alg":"ES256","typ":"at+jwt","kid":"es","kid":"es"}"#,
        // A parser keeping the first `typ` would see an ID token.
        r#"{"alg":"ES256","typ":"JWT","typ":"at+jwt","kid":"es"}"#,
        r#"{"alg":"ES256","typ":"at+jwt","kid":"es","\u0061lg":"ES256"}"#,
        // Nested, in a member the validator does not even read.
        r#"{"alg":"ES256","typ":"at+jwt","kid":"es","jwk":{"kty":"EC","kty":"EC"}}"#,
        r#"{"alg":"ES256","typ":"at+jwt","kid":"es","x":[{"a":{"b":1,"b":2}}]}"#,
    ] {
        assert_eq!(
            reason(validator.validate(&signed(header)).await),
            "malformed",
            "{header}"
        );
    }
}

#[tokio::test]
async fn a_payload_repeating_a_claim_is_malformed_even_when_signed() {
    let key = TestKey::ed25519("ed");
    let validator = static_validator(&[&key]);
    let header = key.header().to_string();
    let signed = |claims: &str| key.token_from_json(&header, claims);
    assert_eq!(
        reason(
            validator
                .validate(&signed(&claims_text_with(r#""tenant":{"id":1}"#)))
                .await
        ),
        "ok",
        "an extra claim without duplicates is fine"
    );
    for members in [
        r#""sub":"admin""#,
        r#""s\u0075b":"admin""#,
        // First right, last wrong: "first one wins" would accept it.
        r#""aud":"https://other.example""#,
        r#""tenant":{"id":1,"id":2}"#,
        r#""roles":[{"name":"user"},{"name":"user","name":"admin"}]"#,
    ] {
        let claims = claims_text_with(members);
        assert_eq!(
            reason(validator.validate(&signed(&claims)).await),
            "malformed",
            "{claims}"
        );
    }
    // Duplicates are looked for after the signature: a forged token stays a bad signature.
    let forged = TestKey::ed25519("ed").token_from_json(&header, &claims_text_with(r#""sub":"x""#));
    assert_eq!(reason(validator.validate(&forged).await), "bad_signature");
}

#[tokio::test]
async fn b64_zip_and_enc_headers_are_refused_even_when_signed() {
    let key = TestKey::es256("es");
    let validator = static_validator(&[&key]);
    for (member, value) in [
        ("b64", json!(false)),
        ("b64", json!(true)),
        ("zip", json!("DEF")),
        ("enc", json!("A256GCM")),
    ] {
        let mut header = key.header();
        header[member] = value.clone();
        // The signature is over `b64(header).b64(claims)`: valid as an ordinary JWS. With
        // `b64: false` the signer meant the second part itself as the payload, not its
        // decoding; with `zip` it meant it compressed. Either way the claims read here are
        // not what was signed.
        let token = key.token_with_header(&header, &claims());
        assert_eq!(
            reason(validator.validate(&token).await),
            "unsupported_header",
            "{member}: {value}"
        );
        // Listed in `crit`, as RFC 7797 §6 requires for `b64`: `crit` is refused first.
        header["crit"] = json!([member]);
        let token = key.token_with_header(&header, &claims());
        assert_eq!(
            reason(validator.validate(&token).await),
            "unsupported_crit",
            "{member} in crit"
        );
    }
}

#[tokio::test]
async fn max_age_accepts_iat_at_the_limit_and_rejects_it_just_beyond() {
    let key = TestKey::es256("es");
    let clock = TestClock::at(NOW);
    let validator = static_validator(&[&key]).with_clock(clock.clone());
    let strict = validator.clone().with_max_age(Duration::from_secs(600));
    // Issued at NOW, valid for an hour.
    let token = key.token(&claims_with("exp", Some(json!(NOW + 3600))));
    assert_eq!(reason(strict.validate(&token).await), "ok");

    // 600 s of age plus the 30 s leeway is still fine...
    clock.advance(630);
    assert_eq!(reason(strict.validate(&token).await), "ok");
    // ...one second more is too old, while `exp` alone would still accept it.
    clock.advance(1);
    let result = strict.validate(&token).await;
    assert_eq!(result.unwrap_err(), ValidationError::TooOld);
    assert_eq!(
        reason(validator.validate(&token).await),
        "ok",
        "off by default"
    );

    // The leeway is part of the limit.
    let no_leeway = strict.clone().with_leeway(Duration::ZERO);
    clock.advance(-31);
    assert_eq!(reason(no_leeway.validate(&token).await), "ok");
    clock.advance(1);
    assert_eq!(reason(no_leeway.validate(&token).await), "too_old");
}

#[tokio::test]
async fn max_lifetime_accepts_exp_at_the_limit_and_rejects_it_just_beyond() {
    let key = TestKey::es256("es");
    let clock = TestClock::at(NOW);
    let validator = static_validator(&[&key]).with_clock(clock.clone());
    let strict = validator
        .clone()
        .with_max_lifetime(Duration::from_secs(600));
    let lifetime = |seconds: i64| {
        let mut claims = claims();
        claims["iat"] = json!(NOW - 10);
        claims["exp"] = json!(NOW - 10 + seconds);
        key.token(&claims)
    };
    assert_eq!(reason(strict.validate(&lifetime(600)).await), "ok");
    assert_eq!(
        strict.validate(&lifetime(601)).await.unwrap_err(),
        ValidationError::LifetimeTooLong
    );
    // `exp` written in milliseconds, or a year away: accepted unless a limit is set.
    for exp in [NOW * 1000, NOW + 365 * 24 * 3600] {
        let token = key.token(&claims_with("exp", Some(json!(exp))));
        assert_eq!(
            reason(validator.validate(&token).await),
            "ok",
            "off by default"
        );
        assert_eq!(
            reason(strict.validate(&token).await),
            "lifetime_too_long",
            "{exp}"
        );
    }
    // The clock does not enter into it: at the limit stays fine until it expires.
    clock.advance(590 + 29);
    assert_eq!(reason(strict.validate(&lifetime(600)).await), "ok");
    clock.advance(1);
    assert_eq!(reason(strict.validate(&lifetime(600)).await), "expired");
}
