use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair,
};
use jsonwebtoken::EncodingKey;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use serde_json::{Value, json};

use super::*;

const NOW: u64 = 1_800_000_000;
const URL: &str = "https://idp.example/token";

/// A client's key pair: its encoding key and its public JWK as JSON.
struct ClientKey {
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

fn es256() -> ClientKey {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let encoding = EncodingKey::from_ec_der(pkcs8.as_ref());
    let jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
    ClientKey {
        alg: Algorithm::ES256,
        encoding,
        jwk: public_members(&jwk),
    }
}

fn es384() -> ClientKey {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let encoding = EncodingKey::from_ec_der(pkcs8.as_ref());
    let jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES384).unwrap();
    ClientKey {
        alg: Algorithm::ES384,
        encoding,
        jwk: public_members(&jwk),
    }
}

fn ed25519() -> ClientKey {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    ClientKey {
        alg: Algorithm::EdDSA,
        encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
    }
}

/// The JWK's key members only (no `alg`, `use`, `kid`), as clients send them.
fn public_members(jwk: &Jwk) -> Value {
    let mut value = serde_json::to_value(jwk).unwrap();
    let object = value.as_object_mut().unwrap();
    object.retain(|name, _| ["kty", "crv", "x", "y", "n", "e"].contains(&name.as_str()));
    value
}

fn claims() -> Value {
    json!({"jti": "e1j3V_bKic8-LAEB", "htm": "POST", "htu": URL, "iat": NOW})
}

fn header(key: &ClientKey) -> Value {
    json!({"typ": "dpop+jwt", "alg": format!("{:?}", key.alg), "jwk": key.jwk})
}

/// A proof over exactly these header and claims bytes, signed by `key`.
fn sign_raw(key: &ClientKey, header: &[u8], claims: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &key.encoding, key.alg).unwrap();
    format!("{input}.{signature}")
}

fn sign(key: &ClientKey, header: &Value, claims: &Value) -> String {
    sign_raw(
        key,
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
    )
}

fn request() -> ProofRequest<'static> {
    ProofRequest {
        method: "POST",
        url: URL,
        access_token: None,
    }
}

fn check(proof: &str) -> Result<Proof, ProofError> {
    verify_proof(proof, &request(), &ProofPolicy::default(), NOW)
}

#[test]
fn a_good_proof_gives_its_key_thumbprint_and_jti() {
    for key in [es256(), es384(), ed25519()] {
        let proof = check(&sign(&key, &header(&key), &claims())).unwrap();
        let jwk: Jwk = serde_json::from_value(key.jwk.clone()).unwrap();
        assert_eq!(proof.jkt, jwk.thumbprint(ThumbprintHash::SHA256).unwrap());
        assert_eq!(proof.jkt.len(), 43, "base64url of 32 bytes");
        assert_eq!(proof.jti, "e1j3V_bKic8-LAEB");
        assert_eq!(proof.iat, NOW);
        assert_eq!(proof.alg, key.alg);
        assert_eq!(proof.nonce, None);
    }
}

#[test]
fn the_thumbprint_is_rfc_7638s() {
    // RFC 7638 §3.1's example key and thumbprint.
    let jwk: Jwk = serde_json::from_value(json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    }))
    .unwrap();
    assert_eq!(
        jwk.thumbprint(ThumbprintHash::SHA256).unwrap(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn the_nonce_is_handed_back_for_the_caller_to_check() {
    let key = es256();
    let mut with_nonce = claims();
    with_nonce["nonce"] = json!("n-0S6_WzA2Mj");
    let proof = check(&sign(&key, &header(&key), &with_nonce)).unwrap();
    assert_eq!(proof.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
    with_nonce["nonce"] = json!(7);
    assert_eq!(
        check(&sign(&key, &header(&key), &with_nonce)).unwrap_err(),
        ProofError::Malformed
    );
}

#[test]
fn the_algs_parameter_names_the_algorithms_as_jose_does() {
    assert_eq!(
        algs_parameter(&DEFAULT_ALGORITHMS),
        "ES256 EdDSA Ed25519 ES384 PS256 RS256"
    );
    for alg in DEFAULT_ALGORITHMS {
        assert_eq!(
            json!(algorithm_names(&[alg])[0]),
            serde_json::to_value(alg).unwrap()
        );
    }
}

#[test]
fn ed25519_is_the_fully_specified_name_of_eddsa_with_that_curve() {
    // RFC 9864 §2.2: what current client libraries (panva's) put in `alg`.
    let key = ed25519();
    let mut h = header(&key);
    h["alg"] = json!("Ed25519");
    let proof = check(&sign(&key, &h, &claims())).unwrap();
    assert_eq!(proof.alg, Algorithm::EdDSA);
    // Its key may name it so too, under either header name.
    for header_alg in ["Ed25519", "EdDSA"] {
        let mut named = header(&key);
        named["alg"] = json!(header_alg);
        named["jwk"]["alg"] = json!("Ed25519");
        assert!(
            check(&sign(&key, &named, &claims())).is_ok(),
            "{header_alg}"
        );
    }
    // Not for another kind of key, nor where EdDSA is not allowed.
    let p256 = es256();
    let mut h = header(&p256);
    h["alg"] = json!("Ed25519");
    assert_eq!(
        check(&sign(&p256, &h, &claims())).unwrap_err(),
        ProofError::InvalidKey
    );
    let only_es256 = ProofPolicy {
        algorithms: vec![Algorithm::ES256],
        ..ProofPolicy::default()
    };
    let mut h = header(&key);
    h["alg"] = json!("Ed25519");
    assert_eq!(
        verify_proof(&sign(&key, &h, &claims()), &request(), &only_es256, NOW).unwrap_err(),
        ProofError::AlgorithmNotAllowed
    );
}

#[test]
fn a_weak_ed25519_key_proves_nothing() {
    // The identity point, and a constant "signature" that the lenient RFC 8032 check accepts
    // for any message under it (an attack found on this verifier).
    let identity = format!("AQ{}", "A".repeat(41));
    let weak = json!({"typ": "dpop+jwt", "alg": "EdDSA",
        "jwk": {"kty": "OKP", "crv": "Ed25519", "x": identity}});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(weak.to_string()),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    let mut signature = [0u8; 64];
    signature[0] = 1;
    let proof = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
    assert_eq!(check(&proof).unwrap_err(), ProofError::InvalidKey);
    // A real Ed25519 key still works, and a signature by another one does not.
    let (key, other) = (ed25519(), ed25519());
    assert!(check(&sign(&key, &header(&key), &claims())).is_ok());
    assert_eq!(
        check(&sign(&other, &header(&key), &claims())).unwrap_err(),
        ProofError::BadSignature
    );
}

#[test]
fn a_signature_by_another_key_or_over_other_bytes_is_refused() {
    let (key, other) = (es256(), es256());
    // Signed by `other`, but naming `key`'s public key.
    let forged = sign(&other, &header(&key), &claims());
    assert_eq!(check(&forged).unwrap_err(), ProofError::BadSignature);
    // A good proof with its claims swapped for others.
    let good = sign(&key, &header(&key), &claims());
    let mut parts: Vec<&str> = good.split('.').collect();
    let mut changed = claims();
    changed["htu"] = json!("https://idp.example/other");
    let changed = URL_SAFE_NO_PAD.encode(changed.to_string());
    parts[1] = &changed;
    assert_eq!(
        check(&parts.join(".")).unwrap_err(),
        ProofError::BadSignature
    );
}

#[test]
fn typ_must_be_dpop_jwt() {
    let key = es256();
    for typ in [json!("JWT"), json!("at+jwt"), json!(null), json!(1)] {
        let mut h = header(&key);
        h["typ"] = typ;
        assert_eq!(
            check(&sign(&key, &h, &claims())).unwrap_err(),
            ProofError::WrongType
        );
    }
    let mut h = header(&key);
    h.as_object_mut().unwrap().remove("typ");
    assert_eq!(
        check(&sign(&key, &h, &claims())).unwrap_err(),
        ProofError::WrongType
    );
    h["typ"] = json!("DPoP+JWT");
    assert!(check(&sign(&key, &h, &claims())).is_ok());
}

#[test]
fn alg_must_be_asymmetric_allowed_and_fit_the_key() {
    let key = es256();
    for alg in ["none", "HS256", "es256", "ES512", ""] {
        let mut h = header(&key);
        h["alg"] = json!(alg);
        assert_eq!(
            check(&sign(&key, &h, &claims())).unwrap_err(),
            ProofError::AlgorithmNotAllowed,
            "{alg}"
        );
    }
    // Allowed, but the key is P-256: ES384, RS256 and EdDSA do not fit it.
    for alg in ["ES384", "RS256", "EdDSA"] {
        let mut h = header(&key);
        h["alg"] = json!(alg);
        assert_eq!(
            check(&sign(&key, &h, &claims())).unwrap_err(),
            ProofError::InvalidKey,
            "{alg}"
        );
    }
    // A policy that does not list ES256 refuses it.
    let only_eddsa = ProofPolicy {
        algorithms: vec![Algorithm::EdDSA],
        ..ProofPolicy::default()
    };
    let proof = sign(&key, &header(&key), &claims());
    assert_eq!(
        verify_proof(&proof, &request(), &only_eddsa, NOW).unwrap_err(),
        ProofError::AlgorithmNotAllowed
    );
    // HMAC listed in a policy is refused all the same.
    let hmac = ProofPolicy {
        algorithms: vec![Algorithm::HS256],
        ..ProofPolicy::default()
    };
    let mut h = header(&key);
    h["alg"] = json!("HS256");
    assert_eq!(
        verify_proof(&sign(&key, &h, &claims()), &request(), &hmac, NOW).unwrap_err(),
        ProofError::AlgorithmNotAllowed
    );
}

#[test]
fn the_jwk_must_be_a_public_key() {
    let key = es256();
    let mut private = key.jwk.clone();
    private["d"] = json!("AAAA");
    let symmetric = json!({"kty": "oct", "k": "c2VjcmV0"});
    let mut own_alg = key.jwk.clone();
    own_alg["alg"] = json!("ES384");
    let mut padded = key.jwk.clone();
    padded["x"] = json!(format!("{}=", key.jwk["x"].as_str().unwrap()));
    // The same point with `04 ‖ x ‖ y` split one byte off (31 + 33, 33 + 31 bytes): another
    // spelling, hence another thumbprint, of the same key (found by an attack run).
    let point: Vec<u8> = ["x", "y"]
        .iter()
        .flat_map(|c| {
            URL_SAFE_NO_PAD
                .decode(key.jwk[c].as_str().unwrap())
                .unwrap()
        })
        .collect();
    let split = |at: usize| {
        let mut jwk = key.jwk.clone();
        jwk["x"] = json!(URL_SAFE_NO_PAD.encode(&point[..at]));
        jwk["y"] = json!(URL_SAFE_NO_PAD.encode(&point[at..]));
        jwk
    };
    for jwk in [
        private,
        symmetric,
        own_alg,
        padded,
        split(31),
        split(33),
        json!("not an object"),
        json!({"kty": "EC", "crv": "P-256"}),
        json!({"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"}),
    ] {
        let mut h = header(&key);
        h["jwk"] = jwk.clone();
        assert_eq!(
            check(&sign(&key, &h, &claims())).unwrap_err(),
            ProofError::InvalidKey,
            "{jwk}"
        );
    }
    let mut h = header(&key);
    h.as_object_mut().unwrap().remove("jwk");
    assert_eq!(
        check(&sign(&key, &h, &claims())).unwrap_err(),
        ProofError::InvalidKey
    );
}

#[test]
fn header_members_that_change_the_signature_are_refused() {
    let key = es256();
    for (member, value) in [
        ("crit", json!(["exp"])),
        ("b64", json!(false)),
        ("zip", json!("DEF")),
        ("enc", json!("A256GCM")),
    ] {
        let mut h = header(&key);
        h[member] = value;
        assert_eq!(
            check(&sign(&key, &h, &claims())).unwrap_err(),
            ProofError::UnsupportedHeader,
            "{member}"
        );
    }
}

#[test]
fn htm_and_htu_must_be_this_requests() {
    let key = es256();
    let proof = |htm: &str, htu: &str| {
        let mut c = claims();
        c["htm"] = json!(htm);
        c["htu"] = json!(htu);
        check(&sign(&key, &header(&key), &c))
    };
    assert_eq!(proof("GET", URL).unwrap_err(), ProofError::MethodMismatch);
    assert_eq!(proof("post", URL).unwrap_err(), ProofError::MethodMismatch);
    // Query and fragment are ignored; case of scheme and host, a default port and dot
    // segments are normalised away.
    for same in [
        "https://idp.example/token?x=1",
        "https://idp.example/token#f",
        "HTTPS://IDP.Example/token",
        "https://idp.example:443/token",
        "https://idp.example/a/../token",
    ] {
        assert!(proof("POST", same).is_ok(), "{same}");
    }
    for other in [
        "http://idp.example/token",
        "https://idp.example:8443/token",
        "https://idp.example/token/",
        "https://idp.example/Token",
        "https://other.example/token",
        "/token",
        "ftp://idp.example/token",
        "",
        " https://idp.example/token",
        "https://idp.example/token ",
        "https://idp.example/token\u{0}",
        "https://idp.example/to\tken",
    ] {
        assert_eq!(
            proof("POST", other).unwrap_err(),
            ProofError::UrlMismatch,
            "{other}"
        );
    }
}

#[test]
fn iat_must_be_within_the_window() {
    let key = es256();
    let policy = ProofPolicy::default();
    let at = |iat: Value| {
        let mut c = claims();
        c["iat"] = iat;
        check(&sign(&key, &header(&key), &c))
    };
    assert!(at(json!(NOW - policy.max_age)).is_ok());
    assert!(at(json!(NOW + policy.max_future)).is_ok());
    assert_eq!(
        at(json!(NOW - policy.max_age - 1)).unwrap_err(),
        ProofError::OutsideWindow
    );
    assert_eq!(
        at(json!(NOW + policy.max_future + 1)).unwrap_err(),
        ProofError::OutsideWindow
    );
    for bad in [json!("1800000000"), json!(-1), json!(1.8e9 + 0.5)] {
        assert_eq!(at(bad.clone()).unwrap_err(), ProofError::Malformed, "{bad}");
    }
}

#[test]
fn required_claims_are_required() {
    let key = es256();
    for name in ["jti", "htm", "htu", "iat"] {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(name);
        assert_eq!(
            check(&sign(&key, &header(&key), &c)).unwrap_err(),
            ProofError::MissingClaim(name)
        );
    }
    for jti in [json!(""), json!("x".repeat(MAX_JTI_LEN + 1)), json!(12)] {
        let mut c = claims();
        c["jti"] = jti;
        assert_eq!(
            check(&sign(&key, &header(&key), &c)).unwrap_err(),
            ProofError::Malformed
        );
    }
}

#[test]
fn with_an_access_token_ath_must_be_its_hash() {
    let key = es256();
    let token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";
    let with_token = ProofRequest {
        access_token: Some(token),
        ..request()
    };
    let policy = ProofPolicy::default();
    let mut c = claims();
    assert_eq!(
        verify_proof(&sign(&key, &header(&key), &c), &with_token, &policy, NOW).unwrap_err(),
        ProofError::MissingClaim("ath")
    );
    c["ath"] = json!(access_token_hash("another token"));
    assert_eq!(
        verify_proof(&sign(&key, &header(&key), &c), &with_token, &policy, NOW).unwrap_err(),
        ProofError::AccessTokenHashMismatch
    );
    c["ath"] = json!(access_token_hash(token));
    assert!(verify_proof(&sign(&key, &header(&key), &c), &with_token, &policy, NOW).is_ok());
    // RFC 9449 §4.2's definition, spelled out.
    assert_eq!(
        access_token_hash(token),
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes()))
    );
}

#[test]
fn malformed_input_is_an_error_never_a_panic() {
    let key = es256();
    let good = sign(&key, &header(&key), &claims());
    let long = "a".repeat(MAX_PROOF_LEN + 1);
    assert_eq!(check(&long).unwrap_err(), ProofError::TooLong);
    let (h, rest) = good.split_once('.').unwrap();
    for bad in [
        String::new(),
        ".".into(),
        "..".into(),
        format!("{h}.{rest}.x"),
        format!("{h}.{}", rest.split('.').next().unwrap()),
        format!("{h}={rest}"),
        format!("{good}="),
        format!("{h}..sig"),
        format!("{}.{rest}", URL_SAFE_NO_PAD.encode("[1]")),
        "\u{e9}.\u{e9}.\u{e9}".into(),
    ] {
        assert!(check(&bad).is_err(), "{bad}");
    }
    // Repeated member names, signed correctly.
    let repeated = format!(
        r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{},"jwk":{}}}"#,
        key.jwk, key.jwk
    );
    let proof = sign_raw(&key, repeated.as_bytes(), claims().to_string().as_bytes());
    assert_eq!(check(&proof).unwrap_err(), ProofError::Malformed);
    let claims_repeated =
        format!(r#"{{"jti":"a","jti":"b","htm":"POST","htu":"{URL}","iat":{NOW}}}"#);
    let proof = sign_raw(
        &key,
        header(&key).to_string().as_bytes(),
        claims_repeated.as_bytes(),
    );
    assert_eq!(check(&proof).unwrap_err(), ProofError::Malformed);
}

#[test]
fn rsa_keys_prove_with_rs256_and_ps256() {
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{
        RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaEncoding, RsaKeyPair, RsaPublicKeyComponents,
    };
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
    let jwk = json!({
        "kty": "RSA",
        "n": URL_SAFE_NO_PAD.encode(&public.n),
        "e": URL_SAFE_NO_PAD.encode(&public.e),
    });
    let expected: Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let expected = expected.thumbprint(ThumbprintHash::SHA256).unwrap();
    let sign = |alg: &str, padding: &'static dyn RsaEncoding, key: &Value| {
        let header = json!({"typ": "dpop+jwt", "alg": alg, "jwk": key});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims().to_string())
        );
        let mut signature = vec![0; pair.public_modulus_len()];
        pair.sign(
            padding,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut signature,
        )
        .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    };
    for (alg, padding, other) in [
        (
            "RS256",
            &RSA_PKCS1_SHA256 as &'static dyn RsaEncoding,
            "PS256",
        ),
        ("PS256", &RSA_PSS_SHA256, "RS256"),
    ] {
        let proof = check(&sign(alg, padding, &jwk)).unwrap();
        assert_eq!(proof.jkt, expected, "{alg}");
        assert_eq!(format!("{:?}", proof.alg), alg);
        // Signed one way, named the other: the signature does not verify.
        assert_eq!(
            check(&sign(other, padding, &jwk)).unwrap_err(),
            ProofError::BadSignature,
            "{alg} named {other}"
        );
        // RSA keys never verify ES256; a modulus that is not base64url is no key.
        assert_eq!(
            check(&sign("ES256", padding, &jwk)).unwrap_err(),
            ProofError::InvalidKey
        );
        let mut bad = jwk.clone();
        bad["n"] = json!("not base64url!");
        assert_eq!(
            check(&sign(alg, padding, &bad)).unwrap_err(),
            ProofError::InvalidKey
        );
    }
}
