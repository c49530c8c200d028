//! The verification library against tokens this IdP minted: it accepts them, and rejects
//! tampered, expired, wrong-audience and wrong-`typ` ones.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;

use crate::harness::*;

async fn access_token(app: &TestApp) -> (String, serde_json::Value) {
    let tokens = app
        .tokens_for(&browser(), PUBLIC_CLIENT, "openid offline_access")
        .await;
    (tokens["access_token"].as_str().unwrap().to_owned(), tokens)
}

#[tokio::test]
async fn the_verifier_accepts_a_fresh_access_token() {
    let app = spawn_app().await;
    let (token, _) = access_token(&app).await;
    let claims = app.validator().validate(&token).await.unwrap();
    assert_eq!(
        claims.aud,
        vec![API.to_owned(), app.issuer.clone() + "/userinfo"]
    );
    assert_eq!(claims.client_id, PUBLIC_CLIENT);
    assert!(claims.sid.is_some());
}

#[tokio::test]
async fn a_tampered_token_is_a_bad_signature() {
    let app = spawn_app().await;
    let (token, _) = access_token(&app).await;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut payload = claims(&token);
    payload["sub"] = "mallory".into();
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap());
    let tampered = parts.join(".");
    let error = app.validator().validate(&tampered).await.unwrap_err();
    assert_eq!(error.reason(), "bad_signature");
}

#[tokio::test]
async fn an_expired_token_is_rejected_once_the_leeway_has_passed() {
    let app = spawn_app().await;
    let (token, _) = access_token(&app).await;
    let validator = app.validator();
    app.clock.advance(300 + 29);
    assert!(
        validator.validate(&token).await.is_ok(),
        "within the 30 s leeway"
    );
    app.clock.advance(1);
    assert_eq!(
        validator.validate(&token).await.unwrap_err().reason(),
        "expired"
    );
}

#[tokio::test]
async fn a_token_for_another_audience_is_rejected() {
    let app = spawn_app().await;
    let browser = browser();
    let (verifier, challenge) = pkce();
    let redirected = app
        .authorize(
            &browser,
            &[
                ("response_type", "code"),
                ("client_id", CONFIDENTIAL_CLIENT),
                ("redirect_uri", REDIRECT_URI),
                ("resource", OTHER_API),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    let response = app
        .exchange(
            CONFIDENTIAL_CLIENT,
            &redirected.param("code").unwrap(),
            &verifier,
        )
        .await;
    let tokens: serde_json::Value = response.json().await.unwrap();
    let error = app
        .validator()
        .validate(tokens["access_token"].as_str().unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "wrong_audience");
}

#[tokio::test]
async fn an_id_token_is_not_an_access_token() {
    let app = spawn_app().await;
    let (_, tokens) = access_token(&app).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    // Even a verifier that allows RS256 and names the client as its audience refuses it.
    let validator = ostiary_verify::Validator::new(
        app.issuer.clone(),
        PUBLIC_CLIENT,
        &[ostiary_verify::Algorithm::RS256],
        ostiary_verify::JwksSource::remote(app.url("/jwks.json")),
    )
    .unwrap();
    assert_eq!(
        validator.validate(id_token).await.unwrap_err().reason(),
        "wrong_type"
    );
}

#[tokio::test]
async fn the_demo_api_answers_bad_tokens_with_an_rfc_6750_challenge() {
    let app = spawn_app().await;
    let api = ostiary_demo::DemoApi::bind("127.0.0.1:0".parse().unwrap(), app.validator(), &[])
        .await
        .unwrap();
    let url = format!("http://{}/api/hello", api.local_addr().unwrap());
    tokio::spawn(api.run_until(std::future::pending()));
    let response = http()
        .get(&url)
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    let missing = http().get(&url).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
}
