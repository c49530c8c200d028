//! The refresh-token state machine over HTTP: rotation, grace-window replay, reuse detection,
//! concurrency, restarts and lifetimes.

use ostiary_core::audit::AuditKind;
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::*;

async fn signed_in(app: &TestApp) -> Value {
    app.tokens_for(&browser(), PUBLIC_CLIENT, "openid offline_access")
        .await
}

async fn refresh_ok(app: &TestApp, token: &str) -> Value {
    let response = app.refresh(token).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

async fn refresh_error(app: &TestApp, token: &str) -> String {
    let response = app.refresh(token).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    response.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn rt(tokens: &Value) -> String {
    tokens["refresh_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn replaying_the_previous_token_inside_the_grace_window_returns_the_same_successor() {
    let app = spawn_app().await;
    let first = rt(&signed_in(&app).await);
    let second = rt(&refresh_ok(&app, &first).await);
    app.clock.advance(10); // the default grace window is 10 s
    let replayed = refresh_ok(&app, &first).await;
    assert_eq!(rt(&replayed), second, "idempotent: no second branch");
    // And the chain goes on from the one successor.
    let third = rt(&refresh_ok(&app, &second).await);
    assert_ne!(third, second);
}

#[tokio::test]
async fn replaying_a_rotated_credential_whose_successor_was_used_revokes_the_session() {
    let app = spawn_app().await;
    let tokens = signed_in(&app).await;
    let first = rt(&tokens);
    let second = rt(&refresh_ok(&app, &first).await);
    app.clock.advance(30);
    let third = rt(&refresh_ok(&app, &second).await);
    app.clock.advance(11);
    assert_eq!(refresh_error(&app, &first).await, "invalid_grant");
    assert_eq!(refresh_error(&app, &third).await, "invalid_grant");
}

#[tokio::test]
async fn a_lost_response_is_recovered_after_the_grace_window_and_a_second_holder_is_caught() {
    let app = spawn_app().await;
    let first = rt(&signed_in(&app).await);
    // The rotation commits, its response never arrives.
    let lost = rt(&refresh_ok(&app, &first).await);
    app.clock.advance(120);
    // The client retries with what it holds: the one successor, no second branch.
    let recovered = rt(&refresh_ok(&app, &first).await);
    assert_eq!(recovered, lost);
    app.clock.advance(5);
    let next = rt(&refresh_ok(&app, &recovered).await);
    // Someone else also holding the recovered token comes back after the grace window.
    app.clock.advance(11);
    assert_eq!(refresh_error(&app, &recovered).await, "invalid_grant");
    assert_eq!(
        refresh_error(&app, &next).await,
        "invalid_grant",
        "session ended"
    );
    let theft = app.audit_of(AuditKind::RefreshTokenReuseDetected).await;
    assert_eq!(theft.len(), 1);
    assert_eq!(theft[0].details["presented_generation"], 1);
}

#[tokio::test]
async fn a_grace_replay_of_a_recovered_token_passes_its_mark_on() {
    let app = spawn_app().await;
    let first = rt(&signed_in(&app).await);
    refresh_ok(&app, &first).await;
    app.clock.advance(120);
    let recovered = rt(&refresh_ok(&app, &first).await);
    let next = rt(&refresh_ok(&app, &recovered).await);
    // Within the grace window the recovered token still gets the same successor, which now
    // may have two holders as well ...
    app.clock.advance(3);
    assert_eq!(rt(&refresh_ok(&app, &recovered).await), next);
    app.clock.advance(60);
    refresh_ok(&app, &next).await;
    // ... so once it rotated, it recovers nothing: a late second use of it is reuse.
    app.clock.advance(60);
    assert_eq!(refresh_error(&app, &next).await, "invalid_grant");
    assert_eq!(
        app.audit_of(AuditKind::RefreshTokenReuseDetected)
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn recovery_ends_at_its_window_and_with_the_session_policy_that_turns_it_off() {
    let app = spawn_app_with(|c| c.session.refresh_recovery = Some(600)).await;
    let first = rt(&signed_in(&app).await);
    refresh_ok(&app, &first).await;
    app.clock.advance(601);
    assert_eq!(refresh_error(&app, &first).await, "invalid_grant");

    let strict = spawn_app_with(|c| c.session.refresh_grace = 0).await;
    let first = rt(&signed_in(&strict).await);
    refresh_ok(&strict, &first).await;
    assert_eq!(refresh_error(&strict, &first).await, "invalid_grant");
}

#[tokio::test]
async fn replaying_an_older_generation_revokes_the_session_even_inside_the_grace_window() {
    let app = spawn_app().await;
    let first = rt(&signed_in(&app).await);
    let second = rt(&refresh_ok(&app, &first).await);
    let third = rt(&refresh_ok(&app, &second).await);
    assert_eq!(refresh_error(&app, &first).await, "invalid_grant");
    assert_eq!(refresh_error(&app, &third).await, "invalid_grant");
}

#[tokio::test]
async fn many_concurrent_refreshes_with_one_credential_yield_one_successor_and_no_alarm() {
    let app = spawn_app().await;
    let first = rt(&signed_in(&app).await);
    let attempts = (0..16).map(|_| {
        let url = app.url("/token");
        let token = first.clone();
        tokio::spawn(async move {
            http()
                .post(url)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                    ("client_id", PUBLIC_CLIENT),
                ])
                .send()
                .await
                .unwrap()
        })
    });
    let mut successors = std::collections::HashSet::new();
    for attempt in attempts {
        let response = attempt.await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        successors.insert(rt(&response.json().await.unwrap()));
    }
    assert_eq!(successors.len(), 1, "exactly one successor");
    let successor = successors.into_iter().next().unwrap();
    refresh_ok(&app, &successor).await;
}

#[tokio::test]
async fn reuse_detection_survives_a_restart_between_rotation_and_replay() {
    let mut app = spawn_app().await;
    let first = rt(&signed_in(&app).await);
    let second = rt(&refresh_ok(&app, &first).await);
    let jwks_before: Value = http()
        .get(app.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    app.restart().await;
    let jwks_after: Value = http()
        .get(app.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        jwks_before, jwks_after,
        "signing keys are persisted, never regenerated"
    );
    // Within the grace window the persisted sealed successor still answers.
    assert_eq!(rt(&refresh_ok(&app, &first).await), second);
    let third = rt(&refresh_ok(&app, &second).await);
    app.restart().await;
    app.clock.advance(30);
    assert_eq!(refresh_error(&app, &first).await, "invalid_grant");
    assert_eq!(refresh_error(&app, &third).await, "invalid_grant");
}

#[tokio::test]
async fn the_idle_timeout_ends_a_session_that_is_not_used() {
    let app = spawn_app_with(|c| c.session.idle_timeout = 3600).await;
    let first = rt(&signed_in(&app).await);
    app.clock.advance(3000);
    let second = rt(&refresh_ok(&app, &first).await);
    app.clock.advance(3000); // 6000 s since login, but only 3000 s idle
    let third = rt(&refresh_ok(&app, &second).await);
    app.clock.advance(3600);
    assert_eq!(refresh_error(&app, &third).await, "invalid_grant");
}

#[tokio::test]
async fn the_absolute_lifetime_ends_even_an_active_session() {
    let app = spawn_app_with(|c| {
        c.session.idle_timeout = 3600;
        c.session.absolute_lifetime = 3 * 3600;
    })
    .await;
    let mut token = rt(&signed_in(&app).await);
    for _ in 0..5 {
        app.clock.advance(1800);
        token = rt(&refresh_ok(&app, &token).await);
    }
    app.clock.advance(1800); // 3 h since login
    assert_eq!(refresh_error(&app, &token).await, "invalid_grant");
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_session() {
    let app = spawn_app().await;
    let first = rt(&signed_in(&app).await);
    let refreshed = refresh_ok(&app, &first).await;
    let second = rt(&refreshed);
    let revoked = app.revoke(&second).await;
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(refresh_error(&app, &second).await, "invalid_grant");
    // The access tokens issued from it go too (RFC 7009 §2.1).
    let access_token = refreshed["access_token"].as_str().unwrap();
    assert_eq!(
        app.userinfo(access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Unknown tokens are answered the same way (RFC 7009 §2.2).
    assert_eq!(app.revoke("not-a-token").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_refresh_token_only_works_for_the_client_it_was_issued_to() {
    let app = spawn_app().await;
    let token = rt(&signed_in(&app).await);
    let response = http()
        .post(app.url("/token"))
        .basic_auth(CONFIDENTIAL_CLIENT, Some(&app.client_secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    // The rightful client still can.
    refresh_ok(&app, &token).await;
}

#[tokio::test]
async fn a_refresh_may_narrow_the_scope_but_never_widen_it() {
    let app = spawn_app().await;
    let token = rt(&app
        .tokens_for(&browser(), PUBLIC_CLIENT, "openid profile offline_access")
        .await);
    let narrowed = http()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token.as_str()),
            ("client_id", PUBLIC_CLIENT),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(narrowed.status(), StatusCode::OK);
    let narrowed: Value = narrowed.json().await.unwrap();
    assert_eq!(
        claims(narrowed["access_token"].as_str().unwrap())["scope"],
        "openid"
    );
    let widened = http()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", narrowed["refresh_token"].as_str().unwrap()),
            ("client_id", PUBLIC_CLIENT),
            ("scope", "openid todos:read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(widened.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        widened.json::<Value>().await.unwrap()["error"],
        "invalid_scope"
    );
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions() {
    let app = spawn_app().await;
    let token = rt(&signed_in(&app).await);
    app.idp
        .set_user_disabled(
            &ostiary_core::user::Username::parse(USERNAME).unwrap(),
            true,
        )
        .await
        .unwrap();
    assert_eq!(refresh_error(&app, &token).await, "invalid_grant");
}

#[tokio::test]
async fn without_offline_access_no_refresh_token_is_issued() {
    let app = spawn_app().await;
    let tokens = app.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await;
    assert!(tokens.get("refresh_token").is_none());
    assert!(tokens.get("id_token").is_some());
}

/// What background tasks read on their own clock (the feed's head, back-channel deliveries
/// due, key maintenance), whenever they come round: not part of any request.
const BACKGROUND: &[&str] = &[
    "latest_revocation_seq",
    "claim_backchannel_deliveries",
    "list_signing_keys",
];

fn request_calls(
    store: &ostiary_store::counting::CountingStore,
) -> std::collections::BTreeMap<&'static str, u64> {
    let mut calls = store.take();
    calls.retain(|method, _| !BACKGROUND.contains(method));
    calls
}

#[tokio::test]
async fn a_refresh_is_one_store_read_and_one_store_write() {
    let (app, store) = spawn_counting_app().await;
    let first = rt(&signed_in(&app).await);
    let second = rt(&refresh_ok(&app, &first).await);
    request_calls(&store);

    let third = rt(&refresh_ok(&app, &second).await);
    assert_eq!(
        request_calls(&store),
        [("find_refresh_grant", 1), ("rotate_refresh", 1)].into(),
        "the client was read less than a second ago"
    );

    app.clock
        .advance(ostiary_core::client_cache::CLIENT_CACHE_TTL);
    refresh_ok(&app, &third).await;
    assert_eq!(
        request_calls(&store),
        [
            ("find_client", 1),
            ("find_refresh_grant", 1),
            ("rotate_refresh", 1)
        ]
        .into(),
        "the client is read again once a second"
    );
}

#[tokio::test]
async fn a_refresh_with_a_dpop_proof_is_still_one_read_and_one_write() {
    let (app, store) = spawn_counting_app().await;
    let key = crate::dpop::DpopClient::new();
    let first = rt(&app.bound_tokens(&key).await);
    let second = app.refresh_with_proof(&first, &app.token_proof(&key)).await;
    let second = rt(&second.json().await.unwrap());
    request_calls(&store);

    let third = app
        .refresh_with_proof(&second, &app.token_proof(&key))
        .await;
    assert_eq!(third.status(), StatusCode::OK);
    assert_eq!(
        request_calls(&store),
        [("find_refresh_grant", 1), ("rotate_refresh", 1)].into(),
        "the proof is recorded with the rotation, not on its own"
    );
}
