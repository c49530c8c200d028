//! Server-provided DPoP nonces (RFC 9449 §8): a client that must use them gets
//! `use_dpop_nonce` and the nonce to use; nonces are accepted on every instance, for one to
//! two rotation windows, and only if this IdP made them.

use ostiary_core::client::ClientId;
use ostiary_core::clock::Clock;
use ostiary_core::dpop::nonce::NONCE_ROTATION;
use ostiary_core::session::ClientPolicy;
use reqwest::StatusCode;
use serde_json::Value;

use crate::dpop::{DpopClient, error_of};
use crate::harness::*;

impl TestApp {
    async fn require_nonces(&self) {
        let policy = ClientPolicy {
            require_dpop_nonce: Some(true),
            ..ClientPolicy::default()
        };
        self.idp
            .set_client_policy(&ClientId::parse(PUBLIC_CLIENT).unwrap(), policy)
            .await
            .unwrap();
    }

    fn token_proof_with(&self, key: &DpopClient, nonce: &str) -> String {
        key.proof_with_nonce(
            "POST",
            &self.url("/token"),
            self.clock.now(),
            None,
            Some(nonce),
        )
    }
}

fn nonce_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("dpop-nonce")
        .expect("a DPoP-Nonce header")
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_client_that_requires_nonces_is_told_the_nonce_and_then_gets_its_tokens() {
    let app = spawn_app().await;
    app.require_nonces().await;
    let key = DpopClient::new();
    let (code, verifier) = app.code().await;

    let refused = app
        .exchange_with_proof(&code, &verifier, &app.token_proof(&key))
        .await;
    let nonce = nonce_of(&refused);
    assert_eq!(
        error_of(refused).await,
        (StatusCode::BAD_REQUEST, "use_dpop_nonce".into())
    );

    // The refusal used nothing up: the same code, with the nonce, gives bound tokens.
    let response = app
        .exchange_with_proof(&code, &verifier, &app.token_proof_with(&key, &nonce))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let next_nonce = nonce_of(&response);
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP");
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    // A refresh without a nonce is refused the same way, and is no reuse of the token.
    let refused = app
        .refresh_with_proof(refresh_token, &app.token_proof(&key))
        .await;
    assert_eq!(
        error_of(refused).await,
        (StatusCode::BAD_REQUEST, "use_dpop_nonce".into())
    );
    let refreshed = app
        .refresh_with_proof(refresh_token, &app.token_proof_with(&key, &next_nonce))
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_nonce_is_good_on_every_instance_until_two_windows_have_passed() {
    let app = spawn_app().await;
    app.require_nonces().await;
    let key = DpopClient::new();
    let other = app.another_instance().await;
    // Made by the other instance, used at this one.
    let nonce = other.idp.dpop_nonce().expect("a nonce");
    let tokens = {
        let (code, verifier) = app.code().await;
        let response = app
            .exchange_with_proof(&code, &verifier, &app.token_proof_with(&key, &nonce))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<Value>().await.unwrap()
    };
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    app.clock.advance(2 * NONCE_ROTATION + 1);
    let stale = app
        .refresh_with_proof(refresh_token, &app.token_proof_with(&key, &nonce))
        .await;
    let fresh = nonce_of(&stale);
    assert_ne!(fresh, nonce, "nonces rotate");
    assert_eq!(
        error_of(stale).await,
        (StatusCode::BAD_REQUEST, "use_dpop_nonce".into())
    );
    let refreshed = app
        .refresh_with_proof(refresh_token, &app.token_proof_with(&key, &fresh))
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_nonce_this_idp_did_not_make_is_refused() {
    let app = spawn_app().await;
    app.require_nonces().await;
    let key = DpopClient::new();
    let (code, verifier) = app.code().await;
    let real = app.idp.dpop_nonce().unwrap();
    // Same shape, other bytes; and plain text.
    let mut forged = real.clone().into_bytes();
    forged[31] = if forged[31] == b'A' { b'B' } else { b'A' };
    for nonce in [String::from_utf8(forged).unwrap(), "hello".to_owned()] {
        let refused = app
            .exchange_with_proof(&code, &verifier, &app.token_proof_with(&key, &nonce))
            .await;
        assert_eq!(
            error_of(refused).await,
            (StatusCode::BAD_REQUEST, "use_dpop_nonce".into()),
            "{nonce}"
        );
    }
}

#[tokio::test]
async fn other_clients_need_no_nonce_but_are_given_one() {
    let app = spawn_app().await;
    let key = DpopClient::new();
    let (code, verifier) = app.code().await;
    let response = app
        .exchange_with_proof(&code, &verifier, &app.token_proof(&key))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let nonce = nonce_of(&response);
    assert!(app.idp.keys().dpop_nonce_is_fresh(&nonce, app.clock.now()));
    // A request without a proof gets no nonce.
    let tokens: Value = response.json().await.unwrap();
    let plain = app
        .refresh_with_dpop(tokens["refresh_token"].as_str().unwrap(), None)
        .await;
    assert!(plain.headers().get("dpop-nonce").is_none());
}
