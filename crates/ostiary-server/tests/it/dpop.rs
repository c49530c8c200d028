//! DPoP (RFC 9449) at the token and userinfo endpoints: tokens bound to the client's key, a
//! public client's refresh token useless without that key, proofs accepted once.

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ostiary_core::clock::Clock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

/// A client's DPoP key pair (ES256), signing proofs as a client library would, written here
/// from the RFCs rather than with Ostiary's code.
pub(crate) struct DpopClient {
    pair: EcdsaKeyPair,
    jwk: Value,
}

impl DpopClient {
    pub(crate) fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        // The uncompressed point: 0x04 || x || y.
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Self { pair, jwk }
    }

    /// RFC 7638 §3: SHA-256 of the required members, in lexicographic order, no spaces.
    pub(crate) fn jkt(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            self.jwk["x"].as_str().unwrap(),
            self.jwk["y"].as_str().unwrap()
        );
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
    }

    pub(crate) fn proof(
        &self,
        method: &str,
        url: &str,
        iat: i64,
        access_token: Option<&str>,
    ) -> String {
        self.proof_with_nonce(method, url, iat, access_token, None)
    }

    /// A proof carrying the server's `nonce` (RFC 9449 §8).
    pub(crate) fn proof_with_nonce(
        &self,
        method: &str,
        url: &str,
        iat: i64,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let mut claims = json!({
            "jti": ostiary_core::secret::random_id(),
            "htm": method,
            "htu": url,
            "iat": iat,
        });
        if let Some(token) = access_token {
            claims["ath"] =
                json!(URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes())));
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

impl TestApp {
    pub(crate) fn token_proof(&self, key: &DpopClient) -> String {
        key.proof("POST", &self.url("/token"), self.clock.now(), None)
    }

    /// A code for the public client, and its PKCE verifier.
    pub(crate) async fn code(&self) -> (String, String) {
        let (redirected, verifier) = self.authorized(&[]).await;
        (redirected.param("code").expect("code"), verifier)
    }

    /// The redirect of an authorization request of the public client with `extra`
    /// parameters, and its PKCE verifier.
    pub(crate) async fn authorized(&self, extra: &[(&str, &str)]) -> (Redirected, String) {
        let (verifier, challenge) = pkce();
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", PUBLIC_CLIENT),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid offline_access"),
            ("state", "xyz"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ];
        params.extend_from_slice(extra);
        (self.authorize(&browser(), &params).await, verifier)
    }

    pub(crate) async fn exchange_with_proof(
        &self,
        code: &str,
        verifier: &str,
        proof: &str,
    ) -> reqwest::Response {
        self.exchange_with_dpop(PUBLIC_CLIENT, code, verifier, Some(proof))
            .await
    }

    pub(crate) async fn refresh_with_proof(
        &self,
        refresh_token: &str,
        proof: &str,
    ) -> reqwest::Response {
        self.refresh_with_dpop(refresh_token, Some(proof)).await
    }

    /// Code exchange with a proof by `key`: the tokens.
    pub(crate) async fn bound_tokens(&self, key: &DpopClient) -> Value {
        let (code, verifier) = self.code().await;
        let response = self
            .exchange_with_proof(&code, &verifier, &self.token_proof(key))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

pub(crate) async fn error_of(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn a_code_exchanged_with_a_proof_gives_tokens_bound_to_the_key() {
    let app = spawn_app().await;
    let key = DpopClient::new();
    let tokens = app.bound_tokens(&key).await;
    assert_eq!(tokens["token_type"], "DPoP");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["cnf"], json!({"jkt": key.jkt()}));

    // Without a proof, the same exchange gives a bearer token without cnf.
    let plain = app.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await;
    assert_eq!(plain["token_type"], "Bearer");
    assert!(
        claims(plain["access_token"].as_str().unwrap())
            .get("cnf")
            .is_none()
    );

    // Discovery says which algorithms proofs may use.
    let metadata: Value = http()
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let algs = metadata["dpop_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(
        ["ES256", "EdDSA", "Ed25519"]
            .iter()
            .all(|alg| algs.contains(&json!(alg))),
        "{algs:?}"
    );
}

#[tokio::test]
async fn a_bound_refresh_token_needs_a_proof_by_its_key_and_a_missing_one_is_no_reuse() {
    let app = spawn_app().await;
    let key = DpopClient::new();
    let thief = DpopClient::new();
    let tokens = app.bound_tokens(&key).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    // A copy without the key: as a bearer refresh, or with a proof by another key.
    assert_eq!(
        error_of(app.refresh(refresh_token).await).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    let other = app.token_proof(&thief);
    assert_eq!(
        error_of(app.refresh_with_proof(refresh_token, &other).await).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );

    // Both were audited as copies without the key, and nothing was taken for reuse.
    use ostiary_core::audit::AuditKind;
    let copies = app.audit_of(AuditKind::DpopKeyNotProved).await;
    let reasons: Vec<_> = copies.iter().map(|e| e.details["reason"].clone()).collect();
    assert_eq!(reasons, [json!("no_proof"), json!("other_key")]);
    assert_eq!(copies[0].details["grant"], "refresh_token");
    assert!(
        app.audit_of(AuditKind::RefreshTokenReuseDetected)
            .await
            .is_empty()
    );

    // The owner is unaffected: its token still rotates (no reuse was detected), and the
    // new access token is bound again.
    let rotated = app
        .refresh_with_proof(refresh_token, &app.token_proof(&key))
        .await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated: Value = rotated.json().await.unwrap();
    assert_eq!(rotated["token_type"], "DPoP");
    assert_eq!(
        claims(rotated["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.jkt()
    );
    let next = rotated["refresh_token"].as_str().unwrap();
    assert_eq!(
        app.refresh_with_proof(next, &app.token_proof(&key))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_proof_is_accepted_once_across_instances() {
    let app = spawn_app().await;
    let key = DpopClient::new();
    let tokens = app.bound_tokens(&key).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    let proof = app.token_proof(&key);
    let first = app.refresh_with_proof(refresh_token, &proof).await;
    assert_eq!(first.status(), StatusCode::OK);
    let next: Value = first.json().await.unwrap();
    let next = next["refresh_token"].as_str().unwrap();
    let replayed = app.refresh_with_proof(next, &proof).await;
    assert_eq!(
        error_of(replayed).await,
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof".into())
    );

    // Another instance on the same database knows it too. (Its issuer, and so its token
    // URL, is its own address here; behind one proxy both would share one, so the proof is
    // checked against the same URL at both.)
    let other = app.another_instance().await;
    let url = app.url("/token");
    let fresh = key.proof("POST", &url, app.clock.now(), None);
    assert!(
        app.idp
            .accept_dpop_proof(&fresh, "POST", &url, None)
            .await
            .is_ok()
    );
    let again = other
        .idp
        .accept_dpop_proof(&fresh, "POST", &url, None)
        .await;
    assert!(
        matches!(again, Err(ostiary_core::IdpError::InvalidDpopProof(_))),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_captured_refresh_request_replayed_gets_nothing_and_ends_nothing() {
    let app = spawn_app().await;
    let key = DpopClient::new();
    let tokens = app.bound_tokens(&key).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();

    // The owner's requests, each seen (and kept) by someone on the way.
    let mut captured = Vec::new();
    let mut current = first.clone();
    for _ in 0..2 {
        let proof = app.token_proof(&key);
        let response = app.refresh_with_proof(&current, &proof).await;
        assert_eq!(response.status(), StatusCode::OK);
        captured.push((current.clone(), proof));
        let body: Value = response.json().await.unwrap();
        current = body["refresh_token"].as_str().unwrap().to_owned();
    }

    // Replayed within the proofs' window: the previous token would be a replay within the
    // grace period (its successor handed out again), the first one a reuse (the session
    // ended). With their proofs used up, neither happens.
    for (token, proof) in captured.iter().rev() {
        assert_eq!(
            error_of(app.refresh_with_proof(token, proof).await).await,
            (StatusCode::BAD_REQUEST, "invalid_dpop_proof".into())
        );
    }
    let still = app
        .refresh_with_proof(&current, &app.token_proof(&key))
        .await;
    assert_eq!(
        still.status(),
        StatusCode::OK,
        "the owner's session goes on"
    );
}

#[tokio::test]
async fn a_proof_sent_with_a_refused_refresh_is_not_used_up() {
    let app = spawn_app().await;
    let key = DpopClient::new();
    let tokens = app.bound_tokens(&key).await;
    let proof = app.token_proof(&key);
    assert_eq!(
        error_of(app.refresh_with_proof("not-a-refresh-token", &proof).await).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    let refreshed = app
        .refresh_with_proof(tokens["refresh_token"].as_str().unwrap(), &proof)
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let next: Value = refreshed.json().await.unwrap();
    // Used now.
    assert_eq!(
        error_of(
            app.refresh_with_proof(next["refresh_token"].as_str().unwrap(), &proof)
                .await
        )
        .await,
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof".into())
    );
}

#[tokio::test]
async fn a_bad_proof_is_invalid_dpop_proof_and_changes_nothing() {
    let app = spawn_app().await;
    let key = DpopClient::new();
    let (code, verifier) = app.code().await;
    let now = app.clock.now();
    for (proof, why) in [
        (key.proof("GET", &app.url("/token"), now, None), "htm"),
        (key.proof("POST", &app.url("/userinfo"), now, None), "htu"),
        (
            key.proof("POST", &app.url("/token"), now - 3600, None),
            "stale iat",
        ),
        ("not-a-jwt".to_owned(), "malformed"),
    ] {
        let response = app.exchange_with_proof(&code, &verifier, &proof).await;
        assert_eq!(
            error_of(response).await,
            (StatusCode::BAD_REQUEST, "invalid_dpop_proof".into()),
            "{why}"
        );
    }
    // Two DPoP headers.
    let proof = app.token_proof(&key);
    let twice = http()
        .post(app.url("/token"))
        .header("DPoP", &proof)
        .header("DPoP", &proof)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", PUBLIC_CLIENT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(twice).await,
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof".into())
    );
    // The code was not consumed by any of them.
    let good = app
        .exchange_with_proof(&code, &verifier, &app.token_proof(&key))
        .await;
    assert_eq!(good.status(), StatusCode::OK);
}

#[tokio::test]
async fn userinfo_takes_a_bound_token_only_with_a_proof_by_its_key() {
    let app = spawn_app().await;
    let key = DpopClient::new();
    let thief = DpopClient::new();
    let tokens = app.bound_tokens(&key).await;
    let access = tokens["access_token"].as_str().unwrap();
    let url = app.url("/userinfo");
    let userinfo = |scheme: &str, proof: Option<String>| {
        let mut request = http()
            .get(&url)
            .header("Authorization", format!("{scheme} {access}"));
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        request.send()
    };
    let now = app.clock.now();

    let ok = userinfo("DPoP", Some(key.proof("GET", &url, now, Some(access))))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    // As a bearer token (RFC 9449 §7.2), with another key's proof, without ath, or without
    // a proof at all: refused.
    let as_bearer = app.userinfo(access).await;
    assert_eq!(as_bearer.status(), StatusCode::UNAUTHORIZED);
    let challenge = as_bearer.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("DPoP algs="), "{challenge}");
    for (proof, why) in [
        (
            Some(thief.proof("GET", &url, now, Some(access))),
            "another key",
        ),
        (Some(key.proof("GET", &url, now, None)), "no ath"),
        (None, "no proof"),
    ] {
        let refused = userinfo("DPoP", proof).await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{why}");
    }
    let bad_proof = userinfo("DPoP", Some(key.proof("GET", &url, now, None)))
        .await
        .unwrap();
    let challenge = bad_proof.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(r#"DPoP algs="#) && challenge.contains(r#"error="invalid_dpop_proof""#),
        "{challenge}"
    );

    // A bearer token is not accepted under the DPoP scheme either.
    let plain = app.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await;
    let bearer = plain["access_token"].as_str().unwrap();
    let mismatched = http()
        .get(&url)
        .header("Authorization", format!("DPoP {bearer}"))
        .header("DPoP", key.proof("GET", &url, now, Some(bearer)))
        .send()
        .await
        .unwrap();
    assert_eq!(mismatched.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn ostiary_verify_takes_a_bound_token_only_with_a_fresh_proof_by_its_key() {
    use ostiary_verify::{DpopRequest, ValidationError};
    let app = spawn_app().await;
    let key = DpopClient::new();
    let thief = DpopClient::new();
    let tokens = app.bound_tokens(&key).await;
    let access = tokens["access_token"].as_str().unwrap();
    let validator = app.validator();
    let url = "https://api.example/orders?page=2";
    let request = DpopRequest { method: "GET", url };
    let now = app.clock.now();

    // As a bearer token: refused (RFC 9449 §7.2).
    assert_eq!(
        validator.validate(access).await.unwrap_err(),
        ValidationError::DpopBound
    );
    // With a proof by the key: accepted, once.
    let proof = key.proof("GET", "https://api.example/orders", now, Some(access));
    let claims = validator
        .validate_dpop(access, &proof, &request)
        .await
        .unwrap();
    assert_eq!(claims.dpop_jkt(), Some(key.jkt().as_str()));
    assert_eq!(
        validator
            .validate_dpop(access, &proof, &request)
            .await
            .unwrap_err()
            .reason(),
        "invalid_dpop_proof"
    );
    // A thief's proof, a proof for another URL or without ath: refused.
    for (proof, reason) in [
        (
            thief.proof("GET", "https://api.example/orders", now, Some(access)),
            "dpop_key_mismatch",
        ),
        (
            key.proof("GET", "https://api.example/other", now, Some(access)),
            "invalid_dpop_proof",
        ),
        (
            key.proof("POST", "https://api.example/orders", now, Some(access)),
            "invalid_dpop_proof",
        ),
        (
            key.proof("GET", "https://api.example/orders", now, None),
            "invalid_dpop_proof",
        ),
    ] {
        let error = validator
            .validate_dpop(access, &proof, &request)
            .await
            .unwrap_err();
        assert_eq!(error.reason(), reason);
    }
    // A bearer token cannot pose as a bound one.
    let plain = app.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await;
    let bearer = plain["access_token"].as_str().unwrap();
    let proof = key.proof("GET", "https://api.example/orders", now, Some(bearer));
    assert_eq!(
        validator
            .validate_dpop(bearer, &proof, &request)
            .await
            .unwrap_err(),
        ValidationError::DpopKeyMismatch
    );
    assert!(validator.validate(bearer).await.is_ok());
}

#[tokio::test]
async fn a_client_that_requires_dpop_gets_no_token_without_a_proof() {
    use ostiary_core::client::ClientId;
    use ostiary_core::session::ClientPolicy;
    let app = spawn_app().await;
    let policy = ClientPolicy {
        require_dpop: Some(true),
        ..ClientPolicy::default()
    };
    app.idp
        .set_client_policy(&ClientId::parse(PUBLIC_CLIENT).unwrap(), policy)
        .await
        .unwrap();
    let key = DpopClient::new();
    let (code, verifier) = app.code().await;
    assert_eq!(
        error_of(app.exchange(PUBLIC_CLIENT, &code, &verifier).await).await,
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof".into())
    );
    // The refused exchange did not use the code up.
    let tokens = app
        .exchange_with_proof(&code, &verifier, &app.token_proof(&key))
        .await;
    assert_eq!(tokens.status(), StatusCode::OK);
    let tokens: Value = tokens.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP");
    assert_eq!(
        error_of(app.refresh(tokens["refresh_token"].as_str().unwrap()).await).await,
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof".into())
    );
}

#[tokio::test]
async fn the_axum_extractor_takes_dpop_bound_tokens_against_the_public_url() {
    use axum::Router;
    use axum::routing::get;
    use ostiary_verify::extract::VerifiedClaims;
    let app = spawn_app().await;
    // The API is reached at 127.0.0.1 here, but its public URL is another: proofs name that
    // one, whatever `Host` the request carries.
    let validator = app.validator().with_public_url("https://api.example/v1/");
    async fn whoami(VerifiedClaims(claims): VerifiedClaims) -> String {
        format!("{} {}", claims.sub, claims.dpop_jkt().unwrap_or("bearer"))
    }
    let api = Router::new()
        .route("/orders", get(whoami))
        .with_state(validator);
    let base = serve_router(api).await;

    let key = DpopClient::new();
    let tokens = app.bound_tokens(&key).await;
    let access = tokens["access_token"].as_str().unwrap();
    let now = app.clock.now();
    let call = |scheme: &'static str, token: String, proof: Option<String>| {
        let mut request = http()
            .get(format!("{base}/orders?x=1"))
            .header("Authorization", format!("{scheme} {token}"));
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        request.send()
    };
    let public = "https://api.example/v1/orders";

    let proof = key.proof("GET", public, now, Some(access));
    let ok = call("DPoP", access.into(), Some(proof.clone()))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok.text().await.unwrap().ends_with(&key.jkt()));

    let replayed = call("DPoP", access.into(), Some(proof)).await.unwrap();
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    let challenges: Vec<_> = replayed
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        challenges[1].starts_with("DPoP algs=")
            && challenges[1].contains(r#"error="invalid_dpop_proof""#),
        "{challenges:?}"
    );
    // The proof names the URL the request went to, not the public one: refused.
    let local = key.proof("GET", &format!("{base}/orders"), now, Some(access));
    assert_eq!(
        call("DPoP", access.into(), Some(local))
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // The bound token as a bearer token, or without a proof: refused.
    assert_eq!(
        call("Bearer", access.into(), None).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call("DPoP", access.into(), None).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // A bearer token still works as one.
    let plain = app.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await;
    let bearer = plain["access_token"].as_str().unwrap().to_owned();
    let response = call("Bearer", bearer, None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().ends_with("bearer"));
}

#[tokio::test]
async fn a_code_requested_with_dpop_jkt_is_exchanged_only_with_a_proof_by_that_key() {
    let app = spawn_app().await;
    let key = DpopClient::new();
    let other = DpopClient::new();
    let jkt = key.jkt();
    for (proof, why) in [
        (None, "no proof"),
        (Some(app.token_proof(&other)), "another key"),
    ] {
        let (redirected, verifier) = app.authorized(&[("dpop_jkt", &jkt)]).await;
        let code = redirected.param("code").expect("code");
        let response = match proof {
            None => app.exchange(PUBLIC_CLIENT, &code, &verifier).await,
            Some(proof) => app.exchange_with_proof(&code, &verifier, &proof).await,
        };
        assert_eq!(
            error_of(response).await,
            (StatusCode::BAD_REQUEST, "invalid_grant".into()),
            "{why}"
        );
    }
    let (redirected, verifier) = app.authorized(&[("dpop_jkt", &jkt)]).await;
    let code = redirected.param("code").expect("code");
    let tokens = app
        .exchange_with_proof(&code, &verifier, &app.token_proof(&key))
        .await;
    assert_eq!(tokens.status(), StatusCode::OK);
    let tokens: Value = tokens.json().await.unwrap();
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["cnf"]["jkt"],
        jkt
    );

    // Not a thumbprint: the request is refused back to the client.
    let (refused, _) = app.authorized(&[("dpop_jkt", "not-a-thumbprint")]).await;
    assert_eq!(refused.param("error").as_deref(), Some("invalid_request"));
    assert!(refused.param("code").is_none());
}

/// A family is bound at its creation or never: a thief who refreshes a stolen unbound token
/// with a key of its own must not be able to bind the family to that key, which would make
/// the owner's older token a quiet "proof required" instead of reuse (found by an attack run).
#[tokio::test]
async fn an_unbound_family_stays_unbound_and_its_stolen_token_is_still_reuse() {
    let app = spawn_app().await;
    let thief = DpopClient::new();
    let tokens = app
        .tokens_for(&browser(), PUBLIC_CLIENT, "openid offline_access")
        .await;
    assert_eq!(tokens["token_type"], "Bearer");
    let stolen = tokens["refresh_token"].as_str().unwrap();

    // With a proof, the thief's access tokens are bound to its key; the family is not.
    let first = app
        .refresh_with_proof(stolen, &app.token_proof(&thief))
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["token_type"], "DPoP");
    assert_eq!(
        claims(first["access_token"].as_str().unwrap())["cnf"]["jkt"],
        thief.jkt()
    );
    let second = app
        .refresh_with_proof(
            first["refresh_token"].as_str().unwrap(),
            &app.token_proof(&thief),
        )
        .await;
    let second: Value = second.json().await.unwrap();
    let latest = second["refresh_token"].as_str().unwrap();

    // The owner's token, two generations old, without a proof: reuse, and the family ends.
    assert_eq!(error_of(app.refresh(stolen).await).await.1, "invalid_grant");
    assert_eq!(
        error_of(
            app.refresh_with_proof(latest, &app.token_proof(&thief))
                .await
        )
        .await
        .1,
        "invalid_grant",
        "the thief's chain ended with the family"
    );
    let reuse = app
        .audit_of(ostiary_core::audit::AuditKind::RefreshTokenReuseDetected)
        .await;
    assert_eq!(reuse.len(), 1);
}

#[tokio::test]
async fn introspection_shows_the_binding_and_revocation_ends_bound_tokens() {
    let app = spawn_app().await;
    let key = DpopClient::new();
    let tokens = app.bound_tokens(&key).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    // RFC 7662 with RFC 9449 §6.2: the key the token is bound to, and its type.
    let introspected: Value = app.introspect(access).await.json().await.unwrap();
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["token_type"], "DPoP");
    assert_eq!(introspected["cnf"], json!({"jkt": key.jkt()}));
    let plain = app.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await;
    let unbound: Value = app
        .introspect(plain["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unbound["token_type"], "Bearer");
    assert!(unbound.get("cnf").is_none_or(Value::is_null), "{unbound}");

    // RFC 7009: a bound refresh token is revoked like any other; its access token with it.
    assert_eq!(app.revoke(refresh_token).await.status(), StatusCode::OK);
    let refused = app
        .refresh_with_proof(refresh_token, &app.token_proof(&key))
        .await;
    assert_eq!(
        error_of(refused).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    let after: Value = app.introspect(access).await.json().await.unwrap();
    assert_eq!(after["active"], false);
}
