//! `X-Forwarded-For` is believed only from trusted proxies, by the right-most-untrusted rule,
//! and what it gives is the address sessions, the login throttle and the audit log record.

use ostiary_core::audit::AuditKind;
use ostiary_server::proxy::TrustedProxies;
use reqwest::StatusCode;

use crate::harness::*;

/// The IPs of the failed-login events, oldest first.
async fn failed_login_ips(app: &TestApp) -> Vec<Option<String>> {
    app.audit_of(AuditKind::LoginFailed)
        .await
        .into_iter()
        .map(|event| event.ip)
        .collect()
}

async fn session_ips(app: &TestApp) -> Vec<Option<String>> {
    app.idp
        .active_sessions(None)
        .await
        .unwrap()
        .into_iter()
        .map(|(session, _)| session.ip)
        .collect()
}

async fn trusting_loopback() -> TestApp {
    spawn_app_with_server(|config| {
        config.trusted_proxies = TrustedProxies::parse(["127.0.0.1", "10.0.0.0/8"]).unwrap();
    })
    .await
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let app = spawn_app().await;
    let spoofing = browser_with(&[
        ("x-forwarded-for", b"203.0.113.9"),
        ("x-forwarded-proto", b"https"),
    ]);
    assert_eq!(
        app.login(&spoofing, USERNAME, "wrong password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login(&spoofing, USERNAME, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(failed_login_ips(&app).await, [Some("127.0.0.1".into())]);
    assert_eq!(session_ips(&app).await, [Some("127.0.0.1".into())]);
}

#[tokio::test]
async fn a_trusted_proxy_gives_the_right_most_address_that_is_not_a_trusted_proxy() {
    let app = trusting_loopback().await;
    // The client claims 198.51.100.1; the edge proxy (10.1.2.3, trusted) saw 203.0.113.9 and
    // forwarded to us on loopback.
    let proxied = browser_with(&[("x-forwarded-for", b"198.51.100.1, 203.0.113.9, 10.1.2.3")]);
    assert_eq!(
        app.login(&proxied, USERNAME, "wrong password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login(&proxied, USERNAME, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(failed_login_ips(&app).await, [Some("203.0.113.9".into())]);
    assert_eq!(session_ips(&app).await, [Some("203.0.113.9".into())]);
    // Without the header, the proxy itself is the client.
    assert_eq!(
        app.login(&browser(), USERNAME, "wrong password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        failed_login_ips(&app).await,
        [Some("203.0.113.9".into()), Some("127.0.0.1".into())]
    );
}

#[tokio::test]
async fn the_login_throttle_counts_forwarded_clients_apart() {
    let app = spawn_app_with_server(|config| {
        config.trusted_proxies = TrustedProxies::parse(["127.0.0.1"]).unwrap();
        config.idp.login_throttle.max_failures_per_user_and_ip = 2;
    })
    .await;
    let attacker = browser_with(&[("x-forwarded-for", b"203.0.113.66")]);
    for _ in 0..2 {
        assert_eq!(
            app.login(&attacker, USERNAME, "guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.login(&attacker, USERNAME, "guess").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the same proxy is not locked out, even for that username.
    let neighbour = browser_with(&[("x-forwarded-for", b"203.0.113.77")]);
    assert_eq!(
        app.login(&neighbour, USERNAME, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn malformed_forwarding_headers_are_harmless() {
    let app = trusting_loopback().await;
    let long = "1.2.3.4,".repeat(1000);
    let garbage: [&[u8]; 8] = [
        b"not an address",
        b"",
        b",,,,",
        b"unknown",
        b"999.1.1.1",
        b"\xff\xfe\xfd",
        b"203.0.113.9, <script>alert(1)</script>",
        long.as_bytes(),
    ];
    for (n, value) in garbage.into_iter().enumerate() {
        let client = browser_with(&[
            ("x-forwarded-for", value),
            ("x-forwarded-proto", b"gopher\xff"),
        ]);
        let health = client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        // A username each, so that the throttle stays out of the way.
        assert_eq!(
            app.login(&client, &format!("user{n}"), "wrong password")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let ips = failed_login_ips(&app).await;
    assert_eq!(ips.len(), garbage.len());
    // The right-most entry decides: garbage there means the peer; the long list ends in a
    // trailing comma, which is an empty (malformed) entry too.
    assert!(
        ips.iter().all(|ip| ip.as_deref() == Some("127.0.0.1")),
        "{ips:?}"
    );
}
