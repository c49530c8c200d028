//! `GET /metrics`: off without its token, refused with a wrong one, and counting what the
//! flows do. Counters are read as differences between two scrapes.

use std::collections::HashMap;

use ostiary_core::audit::{AuditFilter, AuditKind};
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::*;

/// One scrape: each sample line `name{labels} value`, keyed by `name{labels}`.
#[derive(Debug)]
pub(crate) struct Scrape(HashMap<String, f64>);

impl Scrape {
    fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("sample line");
                (
                    series.to_owned(),
                    value.parse::<f64>().expect("sample value"),
                )
            })
            .collect();
        Self(samples)
    }

    /// The value of a series; absent series are 0.
    fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    /// How much `series` went up since `before`.
    pub(crate) fn delta(&self, before: &Scrape, series: &str) -> f64 {
        self.get(series) - before.get(series)
    }
}

pub(crate) async fn scrape(app: &TestApp) -> Scrape {
    let response = http()
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    Scrape::parse(&response.text().await.unwrap())
}

fn rt(tokens: &Value) -> String {
    tokens["refresh_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn metrics_are_off_without_a_metrics_token() {
    let app = spawn_app_with_server(|config| config.metrics_token = None).await;
    let response = http()
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_need_their_own_token_not_another_one() {
    let app = spawn_app().await;
    let anonymous = http().get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    for wrong in ["wrong-token", ADMIN_TOKEN, &METRICS_TOKEN[1..]] {
        let response = http()
            .get(app.url("/metrics"))
            .bearer_auth(wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{wrong}");
    }
    // And the metrics token opens nothing else.
    let admin = http()
        .get(app.url("/admin/sessions"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::UNAUTHORIZED);
    scrape(&app).await;
}

#[tokio::test]
async fn a_login_a_refresh_a_grace_replay_and_a_reuse_move_their_counters() {
    let app = spawn_app().await;
    let before = scrape(&app).await;

    let browser = browser();
    assert_eq!(
        app.login(&browser, USERNAME, "wrong password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let first = rt(&app
        .tokens_for(&browser, PUBLIC_CLIENT, "openid offline_access")
        .await);
    let refreshed = app.refresh(&first).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let second = rt(&refreshed.json::<Value>().await.unwrap());
    // Within the grace window: the same successor again.
    assert_eq!(app.refresh(&first).await.status(), StatusCode::OK);
    // After it, once the successor was used: reuse, and the session ends.
    assert_eq!(app.refresh(&second).await.status(), StatusCode::OK);
    app.clock.advance(11);
    assert_eq!(app.refresh(&first).await.status(), StatusCode::BAD_REQUEST);

    let after = scrape(&app).await;
    let moved = |series: &str| after.delta(&before, series);
    assert_eq!(moved("ostiary_logins_succeeded_total"), 1.0);
    assert_eq!(
        moved("ostiary_login_failures_total{reason=\"wrong_credentials\"}"),
        1.0
    );
    assert_eq!(moved("ostiary_refresh_rotations_total"), 2.0);
    assert_eq!(moved("ostiary_refresh_grace_replays_total"), 1.0);
    assert_eq!(moved("ostiary_refresh_token_reuse_detections_total"), 1.0);
    assert_eq!(
        moved("ostiary_sessions_ended_total{reason=\"refresh_token_reuse\"}"),
        1.0
    );
    assert_eq!(
        moved("ostiary_audit_events_total{kind=\"refresh_token_reuse_detected\"}"),
        1.0
    );
    assert_eq!(moved("ostiary_signing_key_rotations_total"), 0.0);
    // HTTP: the code exchange, two rotations and the grace replay answered 200, the reuse 400.
    assert_eq!(
        moved("ostiary_http_requests_total{method=\"POST\",route=\"/token\",status=\"200\"}"),
        4.0
    );
    assert_eq!(
        moved("ostiary_http_requests_total{method=\"POST\",route=\"/token\",status=\"400\"}"),
        1.0
    );
    assert_eq!(
        moved(
            "ostiary_http_request_duration_seconds_count{method=\"POST\",route=\"/token\",status_class=\"2xx\"}"
        ),
        4.0
    );
    assert_eq!(
        moved(
            "ostiary_http_request_duration_seconds_bucket{method=\"POST\",route=\"/token\",status_class=\"4xx\",le=\"+Inf\"}"
        ),
        1.0
    );
}

#[tokio::test]
async fn requests_are_labelled_by_matched_route_never_by_raw_path() {
    let app = spawn_app().await;
    let before = scrape(&app).await;
    let missing = http()
        .get(app.url("/no/such/page-4711?code=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let jwks = http().get(app.url("/jwks.json?x=1")).send().await.unwrap();
    assert_eq!(jwks.status(), StatusCode::OK);
    let after = scrape(&app).await;
    assert_eq!(
        after.delta(
            &before,
            "ostiary_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}"
        ),
        1.0
    );
    assert_eq!(
        after.delta(
            &before,
            "ostiary_http_requests_total{method=\"GET\",route=\"/jwks.json\",status=\"200\"}"
        ),
        1.0
    );
    assert!(!after.0.keys().any(|series| series.contains("4711")));
}

/// Per kind, how many events the audit log holds.
async fn audit_counts(app: &TestApp) -> HashMap<&'static str, f64> {
    let mut counts = HashMap::new();
    for event in app.idp.audit_events(&AuditFilter::default()).await.unwrap() {
        *counts.entry(event.kind.as_str()).or_default() += 1.0;
    }
    counts
}

#[tokio::test]
async fn every_audit_event_is_counted_exactly_once_including_those_the_store_writes() {
    // One session per user, so that a second login evicts the first (events the store
    // appends inside its transaction).
    let app = spawn_app_with(|c| c.session.max_sessions_per_user = 1).await;
    let log_before = audit_counts(&app).await;
    let before = scrape(&app).await;

    let phone = browser();
    assert_eq!(
        app.login(&phone, "nobody", "wrong password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let tokens = app
        .tokens_for(&phone, PUBLIC_CLIENT, "openid offline_access")
        .await;
    let first = rt(&tokens);
    let second = rt(&app.refresh(&first).await.json::<Value>().await.unwrap());
    assert_eq!(app.refresh(&first).await.status(), StatusCode::OK);
    assert_eq!(
        app.revoke(tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    // A second device: the phone's session is evicted.
    let laptop = browser();
    let laptop_tokens = app
        .tokens_for(&laptop, PUBLIC_CLIENT, "openid offline_access")
        .await;
    assert_eq!(app.refresh(&second).await.status(), StatusCode::BAD_REQUEST);
    // Reuse on the laptop's family, then a revocation of its (now ended) session.
    let laptop_first = rt(&laptop_tokens);
    let laptop_second = rt(&app
        .refresh(&laptop_first)
        .await
        .json::<Value>()
        .await
        .unwrap());
    let laptop_third = rt(&app
        .refresh(&laptop_second)
        .await
        .json::<Value>()
        .await
        .unwrap());
    app.clock.advance(11);
    assert_eq!(
        app.refresh(&laptop_first).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(app.revoke(&laptop_third).await.status(), StatusCode::OK);

    let log_after = audit_counts(&app).await;
    let after = scrape(&app).await;
    let mut total = 0.0;
    for kind in AuditKind::ALL {
        let written = log_after.get(kind.as_str()).copied().unwrap_or_default()
            - log_before.get(kind.as_str()).copied().unwrap_or_default();
        let series = format!("ostiary_audit_events_total{{kind=\"{}\"}}", kind.as_str());
        assert_eq!(after.delta(&before, &series), written, "{}", kind.as_str());
        total += written;
    }
    // The scenario did write what it meant to (evictions and reuse included).
    for kind in [
        AuditKind::SessionEvicted,
        AuditKind::RefreshTokenReuseDetected,
        AuditKind::AccessTokenRevoked,
    ] {
        assert_eq!(
            log_after.get(kind.as_str()).copied().unwrap_or_default(),
            1.0,
            "{}",
            kind.as_str()
        );
    }
    // A failed login, 2 logins, 3 rotations, a grace replay, an access-token revocation, an
    // eviction with its ending, a reuse with its ending.
    assert_eq!(total, 12.0);
    assert_eq!(
        after.delta(
            &before,
            "ostiary_sessions_ended_total{reason=\"policy_eviction\"}"
        ),
        1.0
    );
    assert_eq!(
        after.delta(&before, "ostiary_access_tokens_revoked_total"),
        1.0
    );
}
