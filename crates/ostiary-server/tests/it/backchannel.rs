//! OpenID Connect Back-Channel Logout: a client with a logout endpoint gets a logout token
//! when a session it had tokens in ends, durably (a pending delivery survives a restart).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::routing::post;
use ostiary_core::audit::{AuditFilter, AuditKind};
use ostiary_core::client::{ClientId, ClientKind, RedirectUri};
use ostiary_core::idp::NewClient;
use ostiary_server::backchannel::HttpLogoutSender;
use reqwest::StatusCode;
use tokio::sync::{Mutex, Notify};

use crate::harness::*;

/// Waits (bounded) until the IdP has recorded every delivery's outcome and audited it.
async fn settled(app: &TestApp, kind: AuditKind) {
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let audited = app
                .idp
                .audit_events(&AuditFilter {
                    kind: Some(kind),
                    ..AuditFilter::default()
                })
                .await
                .unwrap();
            if !audited.is_empty() {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the delivery outcome is recorded");
}

/// A relying party's back-channel logout endpoint that records what it receives.
#[derive(Clone, Default)]
struct Rp {
    up: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<String>>>,
    hit: Arc<Notify>,
}

impl Rp {
    async fn start(app: &TestApp) -> Self {
        let rp = Rp::default();
        rp.up.store(true, Ordering::SeqCst);
        let router = axum::Router::new()
            .route(
                "/backchannel",
                post(|State(rp): State<Rp>, body: String| async move {
                    let up = rp.up.load(Ordering::SeqCst);
                    if up {
                        let token = form_urlencoded::parse(body.as_bytes())
                            .find(|(k, _)| k == "logout_token")
                            .map(|(_, v)| v.into_owned())
                            .unwrap_or_default();
                        rp.received.lock().await.push(token);
                    }
                    rp.hit.notify_one();
                    if up {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                }),
            )
            .with_state(rp.clone());
        let uri = format!("{}/backchannel", serve_router(router).await);
        app.idp
            .add_client(NewClient {
                id: ClientId::parse("rp-bc").unwrap(),
                kind: ClientKind::Public,
                redirect_uris: vec![RedirectUri::parse(REDIRECT_URI).unwrap()],
                post_logout_redirect_uris: vec![],
                resources: vec![API.into()],
                extra_scopes: vec![],
                web_origins: vec![],
                backchannel_logout_uri: Some(RedirectUri::parse(&uri).unwrap()),
                policy: Default::default(),
            })
            .await
            .unwrap();
        rp
    }

    /// Waits (bounded) for the next request to arrive.
    async fn next_hit(&self) {
        tokio::time::timeout(std::time::Duration::from_secs(20), self.hit.notified())
            .await
            .expect("the IdP called the back-channel logout endpoint");
    }
}

fn check_logout_token(token: &str, app: &TestApp, sid: &str) {
    let header = header(token);
    assert_eq!(header["typ"], "logout+jwt");
    let claims = claims(token);
    assert_eq!(claims["iss"], app.issuer);
    assert_eq!(claims["aud"], "rp-bc");
    assert_eq!(claims["sid"], sid);
    assert!(claims["jti"].is_string());
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(
        claims.get("nonce").is_none(),
        "a logout token must not carry a nonce"
    );
}

#[tokio::test]
async fn a_client_with_tokens_in_the_session_gets_a_logout_token_when_it_ends() {
    let app = spawn_app().await;
    let rp = Rp::start(&app).await;
    let tokens = app
        .tokens_for(&browser(), "rp-bc", "openid offline_access")
        .await;
    let sid = claims(tokens["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another client in another session gets nothing.
    app.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await;

    let waiting = rp.next_hit();
    app.idp
        .end_session(&sid, ostiary_core::session::EndReason::Logout)
        .await
        .unwrap();
    waiting.await;
    let received = rp.received.lock().await.clone();
    assert_eq!(received.len(), 1);
    check_logout_token(&received[0], &app, &sid);
    // The IdP records the outcome once the endpoint has answered.
    settled(&app, AuditKind::BackchannelDelivered).await;
    let delivered = app.audit_of(AuditKind::BackchannelDelivered).await;
    assert_eq!(delivered.len(), 1);
    assert!(
        app.idp
            .undelivered_backchannel_logouts()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_backoff_and_survives_a_restart() {
    let mut app = spawn_app().await;
    let rp = Rp::start(&app).await;
    rp.up.store(false, Ordering::SeqCst);
    let tokens = app.tokens_for(&browser(), "rp-bc", "openid").await;
    let sid = claims(tokens["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    let first_attempt = rp.next_hit();
    app.idp
        .end_session(&sid, ostiary_core::session::EndReason::Logout)
        .await
        .unwrap();
    first_attempt.await;
    // The failure is recorded and visible, with the time of the next attempt.
    let pending = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let pending = app.idp.undelivered_backchannel_logouts().await.unwrap();
            if pending.first().is_some_and(|d| d.attempts == 1) {
                break pending;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the failed attempt is recorded");
    assert_eq!(pending[0].next_attempt_at, T0 + 10);
    assert!(pending[0].last_error.as_deref().unwrap().contains("503"));
    // Operators see it through the admin API too (and nothing without its token).
    let listed: serde_json::Value = http()
        .get(app.url("/admin/backchannel"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["deliveries"][0]["sid"], sid.as_str());
    assert_eq!(listed["deliveries"][0]["client_id"], "rp-bc");
    assert_eq!(listed["deliveries"][0]["attempts"], 1);
    let anonymous = http()
        .get(app.url("/admin/backchannel"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);

    // The IdP restarts with the delivery still owed; the client's endpoint comes back.
    app.restart().await;
    rp.up.store(true, Ordering::SeqCst);
    let sender = HttpLogoutSender::new().unwrap();
    assert_eq!(
        app.idp
            .deliver_backchannel_logouts(&sender, 10)
            .await
            .unwrap(),
        0,
        "not due before its backoff"
    );
    app.clock.advance(10);
    let delivered = rp.next_hit();
    app.idp
        .deliver_backchannel_logouts(&sender, 10)
        .await
        .unwrap();
    delivered.await;
    let received = rp.received.lock().await.clone();
    assert_eq!(received.len(), 1);
    check_logout_token(&received[0], &app, &sid);
    settled(&app, AuditKind::BackchannelDelivered).await;
    assert!(
        app.idp
            .undelivered_backchannel_logouts()
            .await
            .unwrap()
            .is_empty()
    );
    let failures = app.audit_of(AuditKind::BackchannelFailed).await;
    assert_eq!(failures.len(), 1);
}
