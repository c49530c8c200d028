//! Signing-key rotation as a resource server sees it: a verifier with a cached JWKS keeps
//! accepting tokens across a rotation and learns the new key with one refetch; a key past its
//! retention is gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ostiary_core::audit::AuditKind;
use ostiary_core::keys::KeyState;

use crate::harness::*;

/// A JWKS endpoint in front of the IdP's that counts how often verifiers fetch it.
struct CountingJwks {
    url: String,
    hits: Arc<AtomicUsize>,
}

impl CountingJwks {
    async fn start(app: &TestApp) -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let upstream = app.url("/jwks.json");
        let counter = hits.clone();
        let router = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let upstream = upstream.clone();
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let response = http().get(upstream).send().await.unwrap();
                    let cache = response.headers()["cache-control"].clone();
                    let body = response.text().await.unwrap();
                    (
                        [
                            (http::header::CACHE_CONTROL, cache),
                            (
                                http::header::CONTENT_TYPE,
                                http::HeaderValue::from_static("application/json"),
                            ),
                        ],
                        body,
                    )
                }
            }),
        );
        let url = format!("{}/jwks.json", serve_router(router).await);
        Self { url, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn kid(token: &str) -> String {
    header(token)["kid"].as_str().unwrap().to_owned()
}

/// Rotates the signing keys as a test operator.
async fn rotate(
    app: &TestApp,
    immediately: bool,
) -> Result<ostiary_core::signing::RotationOutcome, ostiary_core::IdpError> {
    app.idp
        .rotate_keys(
            ostiary_core::signing::KeyRotation {
                immediately,
                end_sessions: false,
            },
            ostiary_core::signing::Operator {
                actor: "cli:test",
                origin: None,
            },
        )
        .await
}

#[tokio::test]
async fn a_cached_verifier_keeps_accepting_across_a_rotation_and_refetches_once() {
    let app = spawn_app().await;
    let jwks = CountingJwks::start(&app).await;
    let validator = ostiary_verify::Validator::new(
        app.issuer.clone(),
        API,
        &[ostiary_verify::Algorithm::ES256],
        ostiary_verify::JwksSource::remote(jwks.url.clone()),
    )
    .unwrap()
    .with_clock(Arc::new(SharedClock(app.clock.clone())));

    let before = app.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await;
    let old = before["access_token"].as_str().unwrap().to_owned();
    validator.validate(&old).await.unwrap();
    assert_eq!(jwks.hits(), 1);

    // The next key is published, not signing yet.
    let rotated = rotate(&app, false).await.unwrap().keys;
    assert_eq!(rotated.len(), 2, "access-token and ID-token keys");
    assert!(rotated.iter().all(|k| k.state == KeyState::Next));
    let during = app.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await;
    assert_eq!(kid(during["access_token"].as_str().unwrap()), kid(&old));
    let published: serde_json::Value = http()
        .get(app.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(published["keys"].as_array().unwrap().len(), 4);
    // A second rotation while one is pending is refused.
    assert!(rotate(&app, false).await.is_err());

    // publish_ahead later the new key signs.
    app.clock.advance(app.idp.config().keys.publish_ahead);
    app.idp.maintain_keys().await.unwrap();
    let after = app.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await;
    let new = after["access_token"].as_str().unwrap().to_owned();
    let new_kid = kid(&new);
    assert_ne!(new_kid, kid(&old));
    assert!(rotated.iter().any(|k| k.kid == new_kid));
    assert_eq!(
        kid(after["id_token"].as_str().unwrap()),
        rotated
            .iter()
            .find(|k| k.alg == ostiary_core::keys::SigningAlgorithm::RS256)
            .unwrap()
            .kid
    );

    // The verifier learns the new key with at most one fetch, and keeps accepting the old
    // key's tokens (retired, still published) in the meantime.
    let hits_before = jwks.hits();
    validator.validate(&new).await.unwrap();
    validator.validate(&new).await.unwrap();
    assert!(jwks.hits() - hits_before <= 1, "at most one refetch");

    // An immediate rotation (a compromised key) signs at once and withdraws every older key:
    // the IdP neither publishes nor accepts them any more.
    app.clock.advance(10);
    let urgent = rotate(&app, true).await.unwrap();
    assert!(urgent.keys.iter().all(|k| k.state == KeyState::Current));
    assert!(urgent.withdrawn.contains(&kid(&old)) && urgent.withdrawn.contains(&new_kid));
    let now_signed = app.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await;
    assert!(
        urgent
            .keys
            .iter()
            .any(|k| k.kid == kid(now_signed["access_token"].as_str().unwrap()))
    );
    let published = http()
        .get(app.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!published.contains(&kid(&old)) && !published.contains(&new_kid));
    assert_eq!(
        app.userinfo(&new).await.status(),
        reqwest::StatusCode::UNAUTHORIZED
    );
    let withdrawn = app.audit_of(AuditKind::SigningKeyWithdrawn).await;
    assert_eq!(withdrawn.len(), 4);
    assert!(withdrawn.iter().all(|e| e.actor == "cli:test"));
}

#[tokio::test]
async fn a_verifier_that_cached_the_next_key_needs_no_refetch_and_a_removed_key_is_rejected() {
    let app = spawn_app().await;
    let jwks = CountingJwks::start(&app).await;
    let validator = ostiary_verify::Validator::new(
        app.issuer.clone(),
        API,
        &[ostiary_verify::Algorithm::ES256],
        ostiary_verify::JwksSource::remote(jwks.url.clone()),
    )
    .unwrap()
    .with_clock(Arc::new(SharedClock(app.clock.clone())));
    let old = app.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    rotate(&app, false).await.unwrap();
    // The verifier refreshes its cache while the next key is published (100 s before it
    // signs)...
    let ahead = app.idp.config().keys.publish_ahead;
    app.clock.advance(ahead - 100);
    validator.validate_at(&old, T0).await.unwrap();
    assert_eq!(jwks.hits(), 1);
    // ... so when the key starts signing, within the cache's max-age, it already has it.
    app.clock.advance(100);
    app.idp.maintain_keys().await.unwrap();
    let new = app.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(kid(&new), kid(&old));
    validator.validate(&new).await.unwrap();
    assert_eq!(jwks.hits(), 1, "no refetch: the key was published ahead");

    // Past its retention the old key is removed: not published, and tokens it signed are
    // rejected for their key.
    app.clock.advance(app.idp.key_retention());
    app.idp.maintain_keys().await.unwrap();
    let statuses = app.idp.key_statuses().await.unwrap();
    assert!(statuses.iter().all(|s| s.kid != kid(&old)), "deleted");
    let removed = app.audit_of(AuditKind::SigningKeyRemoved).await;
    assert_eq!(removed.len(), 2);
    let published = http()
        .get(app.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!published.contains(&kid(&old)));
    let later = ostiary_verify::Validator::new(
        app.issuer.clone(),
        API,
        &[ostiary_verify::Algorithm::ES256],
        ostiary_verify::JwksSource::remote(app.url("/jwks.json")),
    )
    .unwrap()
    .with_clock(Arc::new(SharedClock(app.clock.clone())));
    assert_eq!(
        later.validate(&old).await.unwrap_err().reason(),
        "unknown_key"
    );
}

/// A token the holder of `key` (a thief of the private key) mints: any claims it likes, an
/// expiry far away.
fn forged(app: &TestApp, key: &ostiary_core::keys::LoadedKey) -> String {
    use ostiary_core::clock::Clock as _;
    let claims = serde_json::json!({
        "iss": app.issuer, "sub": "attacker", "aud": API, "client_id": PUBLIC_CLIENT,
        "iat": app.clock.now(), "exp": app.clock.now() + 10 * 365 * 24 * 3600,
        "jti": "forged-1", "scope": "openid",
    });
    ostiary_core::token::sign(key, ostiary_core::token::ACCESS_TOKEN_TYP, &claims).unwrap()
}

/// The current access-token signing key, as a thief of the database would have it.
async fn stolen_key(app: &TestApp) -> ostiary_core::keys::LoadedKey {
    let statuses = app.idp.key_statuses().await.unwrap();
    let current = statuses
        .iter()
        .find(|s| {
            s.state == KeyState::Current && s.alg == ostiary_core::keys::SigningAlgorithm::ES256
        })
        .unwrap();
    let stored = app.idp.store().list_signing_keys().await.unwrap();
    let key = stored.iter().find(|k| k.kid == current.kid).unwrap();
    ostiary_core::keys::LoadedKey::load(key, None).unwrap()
}

#[tokio::test]
async fn an_emergency_rotation_makes_a_warm_verifier_reject_forged_tokens_within_two_seconds() {
    let app = spawn_app().await;
    let key = stolen_key(&app).await;
    let forged = forged(&app, &key);
    let feed = ostiary_verify::RevocationFeed::new(&app.url("/revocations"))
        .unwrap()
        .with_clock(Arc::new(SharedClock(app.clock.clone())));
    let validator = app.validator().with_revocation_feed(feed.clone());
    feed.spawn(std::time::Duration::from_millis(100));
    // Before: the stolen key mints tokens the API accepts (its JWKS cache is warm).
    assert_eq!(validator.validate(&forged).await.unwrap().sub, "attacker");
    let mut progress = feed.subscribe();

    let started = std::time::Instant::now();
    let rotated = http()
        .post(app.url("/admin/keys/rotate"))
        .bearer_auth(ADMIN_TOKEN)
        .form(&[("immediately", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), reqwest::StatusCode::OK);
    let outcome: serde_json::Value = rotated.json().await.unwrap();
    assert!(
        outcome["withdrawn"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == key.kid())
    );

    let rejected = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        loop {
            match validator.validate(&forged).await {
                Err(error) => return error,
                Ok(_) => progress.changed().await.unwrap(),
            }
        }
    })
    .await
    .expect("rejected within 2 s of the command");
    assert_eq!(rejected.reason(), "key_withdrawn");
    let took = started.elapsed();
    eprintln!("forged token rejected {took:?} after the emergency rotation");

    // The IdP itself stopped publishing and accepting it at once; new tokens validate (the
    // verifier refetched the JWKS).
    let jwks = http()
        .get(app.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!jwks.contains(key.kid()));
    let fresh = app.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await;
    let token = fresh["access_token"].as_str().unwrap();
    assert_ne!(kid(token), key.kid());
    validator.validate(token).await.unwrap();
    // Audited: who did it, from where.
    let withdrawn = app.audit_of(AuditKind::SigningKeyWithdrawn).await;
    assert!(withdrawn.iter().any(|e| e.details["kid"] == key.kid()));
    assert!(
        withdrawn
            .iter()
            .all(|e| e.actor == "admin_api" && e.ip.is_some())
    );
    // No session ended unless asked.
    assert!(app.audit_of(AuditKind::SessionEnded).await.is_empty());
}

#[tokio::test]
async fn every_instance_signs_with_the_new_key_within_seconds_of_an_emergency_rotation() {
    let a = spawn_app().await;
    let b = a.another_instance().await;
    let old = kid(
        b.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await["access_token"]
            .as_str()
            .unwrap(),
    );
    let outcome = rotate(&a, true).await.unwrap();
    assert!(outcome.withdrawn.contains(&old));
    // B hears it from the feed (SQLite: its head is re-read every second) and reloads.
    let switched = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            let published = http()
                .get(b.url("/jwks.json"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if !published.contains(&old) {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        switched.is_ok(),
        "instance B still publishes the withdrawn key"
    );
    let signed = b.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await;
    let new = kid(signed["access_token"].as_str().unwrap());
    assert!(
        outcome.keys.iter().any(|k| k.kid == new),
        "B signs with the new key"
    );
}

#[tokio::test]
async fn an_emergency_rotation_ends_every_session_only_when_asked() {
    let app = spawn_app().await;
    let tokens = app
        .tokens_for(&browser(), PUBLIC_CLIENT, "openid offline_access")
        .await;
    app.idp
        .rotate_keys(
            ostiary_core::signing::KeyRotation {
                immediately: true,
                end_sessions: true,
            },
            ostiary_core::signing::Operator {
                actor: "cli:test",
                origin: None,
            },
        )
        .await
        .unwrap();
    let refreshed = app.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), reqwest::StatusCode::BAD_REQUEST);
    let ended = app.audit_of(AuditKind::SessionEnded).await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].details["reason"], "signing_key_compromised");
    // end_sessions alone is refused by the admin API (it goes with an emergency rotation).
    let refused = http()
        .post(app.url("/admin/keys/rotate"))
        .bearer_auth(ADMIN_TOKEN)
        .form(&[("end_sessions", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::BAD_REQUEST);
}
