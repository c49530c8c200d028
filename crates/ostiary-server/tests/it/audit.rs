//! The audit log records the security events of the flows, with their evidence, and never a
//! secret.

use ostiary_core::audit::{AuditFilter, AuditKind};
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::*;

#[tokio::test]
async fn logins_refreshes_reuse_and_logout_are_audited_with_evidence_and_without_secrets() {
    let app = spawn_app().await;
    // A failed login first.
    let browser = browser();
    let html = browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let failed = browser
        .post(app.url("/login"))
        .header("User-Agent", "audit-test/1.0")
        .form(&[
            ("username", USERNAME),
            ("password", "not-the-password"),
            ("csrf_token", &hidden_field(&html, "csrf_token")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    let failures = app.audit_of(AuditKind::LoginFailed).await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].details["reason"], "wrong_credentials");
    assert_eq!(failures[0].ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(failures[0].user_agent.as_deref(), Some("audit-test/1.0"));

    let tokens = app
        .tokens_for(&browser, PUBLIC_CLIENT, "openid offline_access")
        .await;
    let sid = claims(tokens["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let logins = app.audit_of(AuditKind::LoginSucceeded).await;
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].sid.as_deref(), Some(sid.as_str()));

    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refreshed: Value = app.refresh(&first).await.json().await.unwrap();
    app.clock.advance(5);
    assert_eq!(app.refresh(&first).await.status(), StatusCode::OK); // within grace
    app.clock.advance(40);
    // After the grace window, with its successor never used: a lost response, recovered.
    assert_eq!(app.refresh(&first).await.status(), StatusCode::OK);
    let second = refreshed["refresh_token"].as_str().unwrap();
    assert_eq!(app.refresh(second).await.status(), StatusCode::OK);
    app.clock.advance(20);
    // Once the successor was used, the first token is theft.
    assert_eq!(app.refresh(&first).await.status(), StatusCode::BAD_REQUEST);

    assert_eq!(app.audit_of(AuditKind::RefreshRotated).await.len(), 2);
    let grace = app.audit_of(AuditKind::RefreshReplayedWithinGrace).await;
    assert_eq!(grace[0].details["seconds_since_rotation"], 5);
    let recovered = app.audit_of(AuditKind::RefreshRecovered).await;
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].details["seconds_since_rotation"], 45);
    assert_eq!(recovered[0].sid.as_deref(), Some(sid.as_str()));
    let theft = app.audit_of(AuditKind::RefreshTokenReuseDetected).await;
    assert_eq!(theft.len(), 1);
    assert_eq!(theft[0].sid.as_deref(), Some(sid.as_str()));
    assert_eq!(theft[0].details["presented_generation"], 0);
    assert_eq!(theft[0].details["current_generation"], 2);
    assert_eq!(theft[0].details["seconds_since_rotation"], 20);
    // The evidence names where both uses came from.
    assert_eq!(theft[0].details["replayed_from"]["ip"], "127.0.0.1");
    assert_eq!(
        theft[0].details["current_token_issued_to"]["ip"],
        "127.0.0.1"
    );
    assert_eq!(theft[0].ip.as_deref(), Some("127.0.0.1"));
    let ended = app.audit_of(AuditKind::SessionEnded).await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].details["reason"], "refresh_token_reuse");
    assert_eq!(ended[0].actor, "system");

    // The whole log, as JSON, holds no password, credential or token.
    let all = app.idp.audit_events(&AuditFilter::default()).await.unwrap();
    let text = serde_json::to_string(&all).unwrap();
    for secret in [
        PASSWORD,
        "not-the-password",
        first.as_str(),
        refreshed["refresh_token"].as_str().unwrap(),
        tokens["access_token"].as_str().unwrap(),
        tokens["id_token"].as_str().unwrap(),
        app.client_secret.as_str(),
    ] {
        assert!(!text.contains(secret), "the audit log contains a secret");
    }
    // Filters combine: this session's events, in order.
    let of_session = app
        .idp
        .audit_events(&AuditFilter {
            sid: Some(sid),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let kinds: Vec<&str> = of_session.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "login_succeeded",
            "refresh_rotated",
            "refresh_replayed_within_grace",
            "refresh_recovered",
            "refresh_rotated",
            "refresh_token_reuse_detected",
            "session_ended"
        ]
    );
}

#[tokio::test]
async fn a_replayed_code_and_a_revoked_access_token_are_audited_with_who_and_where() {
    let app = spawn_app().await;
    let (verifier, challenge) = pkce();
    let redirected = app
        .authorize(
            &browser(),
            &[
                ("response_type", "code"),
                ("client_id", PUBLIC_CLIENT),
                ("redirect_uri", REDIRECT_URI),
                ("scope", "openid"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    let code = redirected.param("code").unwrap();
    let first = app.exchange(PUBLIC_CLIENT, &code, &verifier).await;
    let tokens: Value = first.json().await.unwrap();
    let replay = app.exchange(PUBLIC_CLIENT, &code, &verifier).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    let replayed = app.audit_of(AuditKind::AuthorizationCodeReplayed).await;
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(replayed[0].sid.as_deref(), Some(sid_of(&tokens).as_str()));
    assert!(replayed[0].user_id.is_some());

    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.revoke(access).await.status(), StatusCode::OK);
    let revoked = app.audit_of(AuditKind::AccessTokenRevoked).await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].ip.as_deref(), Some("127.0.0.1"));
}
