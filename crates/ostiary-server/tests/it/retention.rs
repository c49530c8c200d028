//! The retention job: sessions nobody touches end on time like any other ending, and under a
//! long steady load of logins, refreshes and logouts the database stays the same size.

use std::collections::BTreeMap;

use ostiary_core::audit::AuditKind;
use ostiary_core::client::{ClientId, ClientKind, RedirectUri};
use ostiary_core::idp::NewClient;
use ostiary_core::retention::RetentionPolicy;
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::*;

#[tokio::test]
async fn a_session_nobody_touches_is_ended_on_time_published_and_sent_to_back_channel_logout() {
    let app = spawn_app_with(|c| c.session.idle_timeout = 3600).await;
    app.idp
        .add_client(NewClient {
            id: ClientId::parse("rp").unwrap(),
            kind: ClientKind::Public,
            redirect_uris: vec![RedirectUri::parse(REDIRECT_URI).unwrap()],
            post_logout_redirect_uris: vec![],
            resources: vec![API.into()],
            extra_scopes: vec![],
            web_origins: vec![],
            // A closed port: the delivery stays queued, which is what is checked here.
            backchannel_logout_uri: Some(RedirectUri::parse("http://127.0.0.1:1/logout").unwrap()),
            policy: Default::default(),
        })
        .await
        .unwrap();
    let tokens = app
        .tokens_for(&browser(), "rp", "openid offline_access")
        .await;
    let sid = sid_of(&tokens);
    let busy = app
        .tokens_for(&browser(), PUBLIC_CLIENT, "openid offline_access")
        .await;

    // Not yet: the job changes nothing before the limit.
    app.clock.advance(3000);
    assert_eq!(
        app.refresh(busy["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    let early = app.idp.apply_retention("test").await.unwrap();
    assert!(early.ran);
    assert_eq!(early.sessions_expired, 0);

    app.clock.advance(600);
    let report = app.idp.apply_retention("test").await.unwrap();
    assert_eq!(report.sessions_expired, 1, "only the one nobody touched");

    let ended = app.audit_of(AuditKind::SessionEnded).await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].sid.as_deref(), Some(sid.as_str()));
    assert_eq!(ended[0].details["reason"], "idle_timeout");
    let feed = app.revocation_feed().await;
    assert!(
        feed["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["sid"] == sid.as_str() && e["reason"] == "idle_timeout"),
        "{feed}"
    );
    let queued = app.idp.undelivered_backchannel_logouts().await.unwrap();
    assert!(queued.iter().any(|d| d.sid == sid && d.client_id == "rp"));
    // The other session goes on.
    assert_eq!(
        app.refresh(busy["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn instances_sharing_a_database_take_turns() {
    let app = spawn_app().await;
    assert!(app.idp.apply_retention("one").await.unwrap().ran);
    assert!(
        !app.idp.apply_retention("two").await.unwrap().ran,
        "one holds the lease"
    );
    app.clock.advance(RETENTION_INTERVAL);
    assert!(app.idp.apply_retention("two").await.unwrap().ran);
}

/// Row counts of the tables that grow with use (users, clients and keys do not).
async fn growing_tables(app: &TestApp) -> BTreeMap<String, u64> {
    app.idp
        .store()
        .row_counts()
        .await
        .unwrap()
        .into_iter()
        .filter(|(table, _)| !matches!(table.as_str(), "users" | "clients" | "signing_keys"))
        .collect()
}

/// One simulated hour: three sign-ins, each refreshed three times, one signed out by its
/// client, a failed login, then the retention pass.
async fn one_hour(app: &TestApp) {
    for n in 0..3 {
        let tokens = app
            .tokens_for(&browser(), PUBLIC_CLIENT, "openid offline_access")
            .await;
        let mut refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        for _ in 0..3 {
            app.clock.advance(60);
            let rotated: Value = app.refresh(&refresh).await.json().await.unwrap();
            refresh = rotated["refresh_token"].as_str().unwrap().to_owned();
        }
        if n == 0 {
            assert_eq!(app.revoke(&refresh).await.status(), StatusCode::OK);
        }
    }
    assert_eq!(
        app.login(&browser(), USERNAME, "wrong").await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.clock.advance(3600 - 9 * 60);
    let report = app.idp.apply_retention("test").await.unwrap();
    assert!(report.ran);
}

#[tokio::test]
async fn the_database_stays_the_same_size_under_a_long_steady_load() {
    let app = spawn_app_with(|c| {
        c.session.idle_timeout = 2 * 3600;
        c.session.absolute_lifetime = 6 * 3600;
        c.retention = RetentionPolicy {
            ended_sessions: 6 * 3600,
            audit_events: 12 * 3600,
            authorization_codes: 3600,
            backchannel_deliveries: 3600,
            ..c.retention
        };
    })
    .await;
    // Everything kept lives at most 6 h + 6 h (sessions) or 12 h (the audit log): from a day
    // on, every hour deletes what an hour adds.
    let mut sizes = Vec::new();
    for hour in 1..=40 {
        one_hour(&app).await;
        if hour >= 28 {
            sizes.push(growing_tables(&app).await);
        }
    }
    let first = &sizes[0];
    assert!(first["sessions"] > 0 && first["audit_events"] > 0 && first["refresh_tokens"] > 0);
    for (hour, later) in sizes.iter().enumerate() {
        assert_eq!(later, first, "hour {} differs from hour 28", hour + 28);
    }
    // And something was deleted all along, audited.
    let applied = app.audit_of(AuditKind::RetentionApplied).await;
    assert!(!applied.is_empty());
    assert!(
        applied.last().unwrap().details["deleted"]["ended_sessions"]
            .as_u64()
            .unwrap()
            > 0
    );
}
