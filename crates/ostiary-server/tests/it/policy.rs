//! The session limit per user: one session per user in both modes, with the audit trail.

use ostiary_core::audit::AuditKind;
use ostiary_core::session::SessionLimitAction;
use reqwest::StatusCode;

use crate::harness::*;

#[tokio::test]
async fn with_one_session_per_user_a_new_login_ends_the_old_session() {
    let app = spawn_app_with(|c| c.session.max_sessions_per_user = 1).await;
    let first = app
        .tokens_for(&browser(), PUBLIC_CLIENT, "openid offline_access")
        .await;
    let second = app
        .tokens_for(&browser(), PUBLIC_CLIENT, "openid offline_access")
        .await;
    assert_eq!(
        app.refresh(first["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.refresh(second["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );

    let evicted = app.audit_of(AuditKind::SessionEvicted).await;
    assert_eq!(evicted.len(), 1);
    assert_eq!(evicted[0].sid.as_deref(), Some(sid_of(&first).as_str()));
    assert_eq!(evicted[0].details["evicted_by"], sid_of(&second));
    let session = app
        .idp
        .store()
        .find_session(&sid_of(&first))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.end_reason.as_deref(), Some("policy_eviction"));
    // And the eviction is on the revocation feed like any other ending.
    let feed: serde_json::Value = http()
        .get(app.url("/revocations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(feed["entries"][0]["sid"], sid_of(&first));
}

#[tokio::test]
async fn with_refusal_a_second_login_is_refused_with_a_clear_message() {
    let app = spawn_app_with(|c| {
        c.session.max_sessions_per_user = 1;
        c.session.on_session_limit = SessionLimitAction::RefuseNewLogin;
    })
    .await;
    let first = app
        .tokens_for(&browser(), PUBLIC_CLIENT, "openid offline_access")
        .await;
    let refused = app.login(&browser(), USERNAME, PASSWORD).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("already signed in on 1 device(s)")
    );
    assert_eq!(
        app.refresh(first["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    let failures = app.audit_of(AuditKind::LoginFailed).await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].details["reason"], "session_limit");
    // Once the first session ends, a new login works.
    app.idp
        .end_session(&sid_of(&first), ostiary_core::session::EndReason::Logout)
        .await
        .unwrap();
    app.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await;
}

#[tokio::test]
async fn parallel_logins_cannot_exceed_the_session_limit() {
    let app = spawn_app_with(|c| {
        c.session.max_sessions_per_user = 1;
        c.session.on_session_limit = SessionLimitAction::RefuseNewLogin;
    })
    .await;
    // Eight browsers each load the login form, then all submit at once.
    let mut ready = Vec::new();
    for _ in 0..8 {
        let browser = browser();
        let html = browser
            .get(app.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        ready.push((browser, hidden_field(&html, "csrf_token")));
    }
    let attempts = ready.into_iter().map(|(browser, csrf)| {
        let url = app.url("/login");
        tokio::spawn(async move {
            browser
                .post(url)
                .form(&[
                    ("username", USERNAME),
                    ("password", PASSWORD),
                    ("csrf_token", csrf.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
        })
    });
    let mut admitted = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            StatusCode::SEE_OTHER => admitted += 1,
            status => assert_eq!(status, StatusCode::FORBIDDEN),
        }
    }
    assert_eq!(admitted, 1);
    assert_eq!(app.idp.active_sessions(None).await.unwrap().len(), 1);
}
