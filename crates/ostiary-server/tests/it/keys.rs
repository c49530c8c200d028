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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { url, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn kid(token: &str) -> String {
    header(token)["kid"].as_str().unwrap().to_owned()
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
    let rotated = app.idp.rotate_keys(false).await.unwrap();
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
    assert!(app.idp.rotate_keys(false).await.is_err());

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

    // An immediate rotation (a compromised key) signs at once.
    app.clock.advance(10);
    let urgent = app.idp.rotate_keys(true).await.unwrap();
    assert!(urgent.iter().all(|k| k.state == KeyState::Current));
    let now_signed = app.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await;
    assert!(
        urgent
            .iter()
            .any(|k| k.kid == kid(now_signed["access_token"].as_str().unwrap()))
    );
    validator.validate_at(&old, T0).await.unwrap();
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

    app.idp.rotate_keys(false).await.unwrap();
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
