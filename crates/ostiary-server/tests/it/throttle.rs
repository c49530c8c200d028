//! The failed-login throttle over HTTP (see `ostiary_core::throttle` for the model): it slows
//! the attacker, never locks the owner out from elsewhere, reveals nothing about which users
//! exist, and cannot grow the audit log at request rate. Client addresses come from
//! `X-Forwarded-For`, believed from the loopback "proxy".

use ostiary_core::audit::AuditKind;
use ostiary_core::throttle::ThrottlePolicy;
use ostiary_server::ServerConfig;
use ostiary_server::proxy::TrustedProxies;
use reqwest::StatusCode;

use crate::harness::*;

/// An app whose clients' addresses are whatever `X-Forwarded-For` says, with `policy`.
async fn behind_a_proxy(policy: ThrottlePolicy) -> TestApp {
    spawn_app_with_server(|config: &mut ServerConfig| {
        config.trusted_proxies = TrustedProxies::parse(["127.0.0.1"]).unwrap();
        config.idp.login_throttle = policy;
    })
    .await
}

/// A browser at `ip`.
fn at(ip: &'static str) -> reqwest::Client {
    browser_with(&[("x-forwarded-for", ip.as_bytes())])
}

/// No held-back answers (they would make the tests wait): only the refusals are tested here,
/// except where a test sets a delay itself.
fn without_delays() -> ThrottlePolicy {
    ThrottlePolicy {
        max_failure_delay: 0,
        ..ThrottlePolicy::default()
    }
}

#[tokio::test]
async fn hammering_a_username_from_one_address_never_locks_the_owner_out_from_another() {
    let app = behind_a_proxy(without_delays()).await;
    let attacker = at("203.0.113.66");
    let mut refused = 0;
    for _ in 0..200 {
        let status = app.login(&attacker, USERNAME, "guess").await.status();
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert_eq!(refused, 195, "five guesses, then it waits");
    // Even the right password is refused from the attacker's address ...
    assert_eq!(
        app.login(&attacker, USERNAME, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // ... but the owner at home signs in at once.
    assert_eq!(
        app.login(&at("198.51.100.7"), USERNAME, PASSWORD)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn the_wait_of_one_username_at_one_address_doubles_after_each_failure_and_ends() {
    let app = behind_a_proxy(without_delays()).await;
    let attacker = at("203.0.113.66");
    for _ in 0..5 {
        assert_eq!(
            app.login(&attacker, USERNAME, "guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    for wait in [1, 2, 4, 8] {
        let refused = app.login(&attacker, USERNAME, PASSWORD).await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()["retry-after"], wait.to_string().as_str());
        let page = refused.text().await.unwrap();
        let text = if wait == 1 { "1 second" } else { "seconds" };
        assert!(page.contains(text), "{page}");
        app.clock.advance(wait);
        assert_eq!(
            app.login(&attacker, USERNAME, "guess").await.status(),
            StatusCode::UNAUTHORIZED,
            "one guess after each wait"
        );
    }
    // Left alone for the window, the counter is forgotten: the owner gets in from there too.
    app.clock.advance(ThrottlePolicy::default().window);
    assert_eq!(
        app.login(&attacker, USERNAME, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_correct_password_signs_in_from_an_address_that_sprays_other_accounts() {
    let app = behind_a_proxy(without_delays()).await;
    let office = at("192.0.2.10");
    for n in 0..150 {
        let guess = app.login(&office, &format!("user{n}"), "Summer2026!").await;
        assert_eq!(
            guess.status(),
            StatusCode::UNAUTHORIZED,
            "never refused by address"
        );
    }
    assert_eq!(
        app.login(&office, USERNAME, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn past_the_username_and_address_ceilings_failed_answers_are_held_back() {
    let app = behind_a_proxy(ThrottlePolicy {
        max_failures_per_ip: 2,
        max_failure_delay: 1,
        ..ThrottlePolicy::default()
    })
    .await;
    let sprayer = at("192.0.2.20");
    for n in 0..2 {
        app.login(&sprayer, &format!("user{n}"), "guess").await;
    }
    let started = std::time::Instant::now();
    let held = app.login(&sprayer, "user9", "guess").await;
    assert_eq!(held.status(), StatusCode::UNAUTHORIZED);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "the failed answer waited its second"
    );
    // A correct password from the same address is answered at once (no lower bound to
    // check; it simply succeeds).
    assert_eq!(
        app.login(&sprayer, USERNAME, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn answers_are_the_same_for_a_user_that_exists_and_one_that_does_not() {
    let app = behind_a_proxy(without_delays()).await;
    let attacker = at("203.0.113.66");
    for (existing, missing) in [(USERNAME, "no-such-user"), (USERNAME, "x@y")] {
        let mut seen = Vec::new();
        for username in [existing, missing] {
            let mut answers = Vec::new();
            for _ in 0..8 {
                let response = app.login(&attacker, username, "guess").await;
                let status = response.status();
                let retry = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                let page = response.text().await.unwrap();
                let message = page
                    .split("role=\"alert\">")
                    .nth(1)
                    .and_then(|rest| rest.split('<').next())
                    .unwrap_or_default()
                    .to_owned();
                answers.push((status, retry, message));
            }
            seen.push(answers);
        }
        assert_eq!(seen[0], seen[1]);
        app.clock.advance(3600);
    }
}

#[tokio::test]
async fn unlocking_a_user_through_the_admin_api_ends_the_wait_and_is_audited() {
    let app = behind_a_proxy(without_delays()).await;
    let attacker = at("203.0.113.66");
    for _ in 0..6 {
        app.login(&attacker, USERNAME, "guess").await;
    }
    assert_eq!(
        app.login(&attacker, USERNAME, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let unlocked = http()
        .post(app.url("/admin/users/unlock"))
        .bearer_auth(ADMIN_TOKEN)
        .form(&[("user", USERNAME)])
        .send()
        .await
        .unwrap();
    assert_eq!(unlocked.status(), StatusCode::OK);
    assert_eq!(unlocked.headers()["cache-control"], "no-store");
    let body: serde_json::Value = unlocked.json().await.unwrap();
    assert_eq!(
        body["cleared"], 2,
        "the pair and the username's own counter"
    );
    assert_eq!(
        app.login(&attacker, USERNAME, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let cleared = app.audit_of(AuditKind::LoginCountersCleared).await;
    assert_eq!(cleared.len(), 1);
    assert_eq!(cleared[0].actor, "admin_api");
    assert!(cleared[0].user_id.is_some());
    // Unknown users and bad input get the admin API's normal errors.
    for user in ["nobody", "bad name", ""] {
        let response = http()
            .post(app.url("/admin/users/unlock"))
            .bearer_auth(ADMIN_TOKEN)
            .form(&[("user", user)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{user:?}");
    }
}

#[tokio::test]
async fn a_new_password_clears_the_counters_too() {
    let app = behind_a_proxy(without_delays()).await;
    let attacker = at("203.0.113.66");
    for _ in 0..6 {
        app.login(&attacker, USERNAME, "guess").await;
    }
    let username = ostiary_core::user::Username::parse(USERNAME).unwrap();
    let new = "an-entirely-new-passw0rd";
    app.idp
        .set_password(&username, ostiary_core::secret::Password::new(new))
        .await
        .unwrap();
    assert_eq!(
        app.login(&attacker, USERNAME, new).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn throttled_attempts_are_audited_together_and_all_counted_in_the_metrics() {
    let app = behind_a_proxy(without_delays()).await;
    let before = crate::metrics::scrape(&app).await;
    let attacker = at("203.0.113.66");
    for _ in 0..500 {
        app.login(&attacker, USERNAME, "guess").await;
    }
    // Five failures on their own, then one event for the burst so far.
    let failed = app.audit_of(AuditKind::LoginFailed).await;
    assert_eq!(failed.len(), 5);
    let throttled = app.audit_of(AuditKind::LoginThrottled).await;
    assert_eq!(throttled.len(), 1);
    assert_eq!(throttled[0].details["counter"], "user_and_address");
    assert_eq!(throttled[0].details["attempts"], 1);
    assert_eq!(throttled[0].ip.as_deref(), Some("203.0.113.66"));
    assert!(throttled[0].user_id.is_some(), "names a user that exists");
    // A minute later, the rest of the burst in one more.
    app.clock.advance(60);
    app.login(&attacker, USERNAME, "guess").await;
    let throttled = app.audit_of(AuditKind::LoginThrottled).await;
    assert_eq!(throttled.len(), 2);
    assert_eq!(throttled[1].details["attempts"], 495);
    // The metrics count every one of the 501 failures.
    let after = crate::metrics::scrape(&app).await;
    let failures = after.delta(
        &before,
        "ostiary_login_failures_total{reason=\"wrong_credentials\"}",
    ) + after.delta(
        &before,
        "ostiary_login_failures_total{reason=\"throttled\"}",
    );
    assert_eq!(failures, 501.0);
}
