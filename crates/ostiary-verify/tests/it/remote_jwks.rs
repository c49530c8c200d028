//! The remote JWKS cache, against a counting server on 127.0.0.1. Time moves only through
//! the validator's clock.

use std::time::Duration;

use axum::http::StatusCode;
use ostiary_verify::ValidationError;
use serde_json::json;

use crate::harness::*;

fn reason(result: Result<ostiary_verify::AccessTokenClaims, ValidationError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(error) => error.reason(),
    }
}

#[tokio::test]
async fn keys_are_fetched_on_first_use_and_cached_for_max_age() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(&[&key], Some("public, max-age=120")).await;
    let (validator, clock) = remote_validator(server.jwks_url());
    assert_eq!(server.hits(), 0, "nothing fetched before first use");

    let token = key.token(&claims());
    assert_eq!(reason(validator.validate_at(&token, NOW).await), "ok");
    assert_eq!(server.hits(), 1);

    clock.advance(119);
    assert_eq!(reason(validator.validate_at(&token, NOW).await), "ok");
    assert_eq!(server.hits(), 1, "still fresh");

    clock.advance(1);
    assert_eq!(reason(validator.validate_at(&token, NOW).await), "ok");
    assert_eq!(server.hits(), 2, "refetched after max-age");
}

#[tokio::test]
async fn max_age_is_clamped_and_defaults_to_five_minutes() {
    let key = TestKey::ed25519("k1");
    let token = key.token(&claims());
    for (cache_control, ttl) in [
        (Some("max-age=5"), 60),
        (Some("no-store"), 60),
        (None, 300),
        (Some("max-age=999999"), 86_400),
    ] {
        let server = JwksServer::start(&[&key], cache_control).await;
        let (validator, clock) = remote_validator(server.jwks_url());
        validator.validate_at(&token, NOW).await.unwrap();
        clock.advance(ttl - 1);
        validator.validate_at(&token, NOW).await.unwrap();
        assert_eq!(server.hits(), 1, "{cache_control:?} fresh before {ttl} s");
        clock.advance(1);
        validator.validate_at(&token, NOW).await.unwrap();
        assert_eq!(server.hits(), 2, "{cache_control:?} stale at {ttl} s");
    }
}

#[tokio::test]
async fn prefetch_fetches_eagerly() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(&[&key], Some("max-age=600")).await;
    let (validator, _clock) = remote_validator(server.jwks_url());
    validator.prefetch().await.unwrap();
    assert_eq!(server.hits(), 1);
    validator
        .validate_at(&key.token(&claims()), NOW)
        .await
        .unwrap();
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn an_unknown_kid_triggers_exactly_one_refetch_and_then_rate_limits() {
    let old = TestKey::es256("old");
    let server = JwksServer::start(&[&old], Some("max-age=3600")).await;
    let (validator, clock) = remote_validator(server.jwks_url());
    validator
        .validate_at(&old.token(&claims()), NOW)
        .await
        .unwrap();
    assert_eq!(server.hits(), 1);

    // A kid the identity provider has never published: one refetch, then unknown_key.
    let stranger = TestKey::es256("random-1");
    assert_eq!(
        reason(validator.validate_at(&stranger.token(&claims()), NOW).await),
        "unknown_key"
    );
    assert_eq!(server.hits(), 2, "exactly one refetch");

    // Another unknown kid within 30 s: no request at all.
    clock.advance(29);
    let stranger = TestKey::es256("random-2");
    assert_eq!(
        reason(validator.validate_at(&stranger.token(&claims()), NOW).await),
        "unknown_key"
    );
    assert_eq!(server.hits(), 2, "rate-limited");

    // Meanwhile the identity provider rotates; its new key is found once 30 s have passed.
    let new = TestKey::es256("new");
    server.serve_keys(&[&old, &new]);
    assert_eq!(
        reason(validator.validate_at(&new.token(&claims()), NOW).await),
        "unknown_key"
    );
    assert_eq!(server.hits(), 2, "still rate-limited");
    clock.advance(1);
    assert_eq!(
        reason(validator.validate_at(&new.token(&claims()), NOW).await),
        "ok"
    );
    assert_eq!(server.hits(), 3);
    // And is cached from then on.
    assert_eq!(
        reason(validator.validate_at(&new.token(&claims()), NOW).await),
        "ok"
    );
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn a_known_kid_with_a_bad_signature_does_not_refetch() {
    let key = TestKey::ed25519("k1");
    let server = JwksServer::start(&[&key], Some("max-age=3600")).await;
    let (validator, _clock) = remote_validator(server.jwks_url());
    let impostor = TestKey::ed25519("k1");
    assert_eq!(
        reason(validator.validate_at(&impostor.token(&claims()), NOW).await),
        "bad_signature"
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_validations_share_one_fetch() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(&[&key], Some("max-age=600")).await;
    let (validator, _clock) = remote_validator(server.jwks_url());
    let token = key.token(&claims());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (validator, token) = (validator.clone(), token.clone());
        tasks.spawn(async move { validator.validate_at(&token, NOW).await });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_in_flight_does_not_hold_up_validations_that_have_stale_keys() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(&[&key], Some("max-age=60")).await;
    let (validator, clock) = remote_validator(server.jwks_url());
    let token = key.token(&claims());
    validator.validate_at(&token, NOW).await.unwrap();

    server.hold_replies();
    clock.advance(60);
    let refreshing = tokio::spawn({
        let (validator, token) = (validator.clone(), token.clone());
        async move { validator.validate_at(&token, NOW).await }
    });
    server.request_held().await;

    // The refresh hangs; another request still gets an answer, from the stale keys.
    let meanwhile =
        tokio::time::timeout(Duration::from_secs(2), validator.validate_at(&token, NOW)).await;
    assert_eq!(reason(meanwhile.expect("not blocked by the refresh")), "ok");
    assert_eq!(server.hits(), 2);

    server.release_replies();
    assert_eq!(reason(refreshing.await.unwrap()), "ok");
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn stale_keys_are_used_while_the_server_is_down() {
    let key = TestKey::es256("k1");
    let server = JwksServer::start(&[&key], Some("max-age=60")).await;
    let (validator, clock) = remote_validator(server.jwks_url());
    let token = key.token(&claims());
    validator.validate_at(&token, NOW).await.unwrap();

    server.set_reply(|reply| reply.status = StatusCode::INTERNAL_SERVER_ERROR);
    clock.advance(61);
    assert_eq!(
        reason(validator.validate_at(&token, NOW).await),
        "ok",
        "stale keys still verify"
    );
    assert_eq!(server.hits(), 2, "a refresh was attempted");

    // The failure is not retried on every request.
    clock.advance(5);
    assert_eq!(reason(validator.validate_at(&token, NOW).await), "ok");
    assert_eq!(server.hits(), 2);

    // Garbage and oversized answers are failures too; the keys survive them.
    server.set_reply(|reply| {
        reply.status = StatusCode::OK;
        reply.body = "<html>maintenance</html>".into();
    });
    clock.advance(10);
    assert_eq!(reason(validator.validate_at(&token, NOW).await), "ok");
    assert_eq!(server.hits(), 3);
    server.set_reply(|reply| {
        reply.body = json!({ "keys": [], "pad": "x".repeat(300 * 1024) }).to_string()
    });
    clock.advance(10);
    assert_eq!(reason(validator.validate_at(&token, NOW).await), "ok");
    assert_eq!(server.hits(), 4);
    server.set_reply(|reply| reply.body = r#"{"keys":[]}"#.into());
    clock.advance(10);
    assert_eq!(reason(validator.validate_at(&token, NOW).await), "ok");
    assert_eq!(server.hits(), 5);

    // Back up: fresh keys again.
    server.serve_keys(&[&key]);
    clock.advance(10);
    assert_eq!(reason(validator.validate_at(&token, NOW).await), "ok");
    assert_eq!(server.hits(), 6);
    clock.advance(59);
    assert_eq!(reason(validator.validate_at(&token, NOW).await), "ok");
    assert_eq!(server.hits(), 6);
}

#[tokio::test]
async fn without_any_keys_the_jwks_is_unavailable() {
    let key = TestKey::es256("k1");
    let (validator, _clock) = remote_validator(dead_url().await);
    let token = key.token(&claims());
    assert_eq!(
        validator.validate_at(&token, NOW).await.unwrap_err(),
        ValidationError::JwksUnavailable
    );
    assert_eq!(
        validator.prefetch().await.unwrap_err(),
        ValidationError::JwksUnavailable
    );

    let server = JwksServer::start(&[&key], None).await;
    server.set_reply(|reply| reply.status = StatusCode::SERVICE_UNAVAILABLE);
    let (validator, _clock) = remote_validator(server.jwks_url());
    assert_eq!(
        validator.validate_at(&token, NOW).await.unwrap_err(),
        ValidationError::JwksUnavailable
    );
}

#[tokio::test]
async fn header_urls_are_never_fetched() {
    let legit = TestKey::es256("legit");
    let attacker = TestKey::es256("attacker");
    let idp = JwksServer::start(&[&legit], Some("max-age=600")).await;
    let trap = JwksServer::start(&[&attacker], None).await;
    let (validator, _clock) = remote_validator(idp.jwks_url());

    for kid in [Some("attacker"), Some("legit"), None] {
        let mut header = json!({
            "alg": "ES256", "typ": "at+jwt",
            "jku": trap.jwks_url(), "x5u": format!("{}/cert.pem", trap.base),
            "jwk": attacker.jwk, "x5c": ["MIIBkTCB+wIJAL"],
        });
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        let token = attacker.token_with_header(&header, &claims());
        let result = validator.validate_at(&token, NOW).await;
        let expected = if kid == Some("attacker") {
            "unknown_key"
        } else {
            "bad_signature"
        };
        assert_eq!(reason(result), expected, "{kid:?}");
    }
    assert_eq!(trap.hits(), 0, "jku/x5u must never be fetched");
    assert_eq!(
        idp.hits(),
        2,
        "the configured JWKS, plus one refetch for the unknown kid"
    );
}
