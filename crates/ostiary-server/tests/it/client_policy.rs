//! Per-client policies: a client's own session limit (both modes), idle and absolute limits
//! on its refresh tokens, and its own grace window, each next to the global policy.

use ostiary_core::audit::AuditKind;
use ostiary_core::client::ClientId;
use ostiary_core::session::{ClientPolicy, SessionLimitAction};
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::*;

fn refresh_token(tokens: &Value) -> &str {
    tokens["refresh_token"].as_str().unwrap()
}

async fn with_policy(policy: ClientPolicy) -> TestApp {
    let app = spawn_app().await;
    app.idp
        .set_client_policy(&ClientId::parse(PUBLIC_CLIENT).unwrap(), policy)
        .await
        .unwrap();
    app
}

/// Authorizes `client_id` in `browser` (signing in if needed) and returns the code exchange's
/// response, whatever it is.
async fn exchange_in(
    app: &TestApp,
    browser: &reqwest::Client,
    client_id: &str,
) -> reqwest::Response {
    let (code, verifier) = code_in(app, browser, client_id).await;
    app.exchange(client_id, &code, &verifier).await
}

/// An authorization code for `client_id` in `browser`'s session, and its verifier.
async fn code_in(app: &TestApp, browser: &reqwest::Client, client_id: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let redirected = app
        .authorize(
            browser,
            &[
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", REDIRECT_URI),
                ("scope", "openid offline_access"),
                ("state", "s"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    (redirected.param("code").unwrap(), verifier)
}

#[tokio::test]
async fn a_client_limited_to_one_session_ends_the_older_session_that_holds_its_tokens() {
    let app = with_policy(ClientPolicy {
        max_sessions_per_user: Some(1),
        ..ClientPolicy::default()
    })
    .await;
    let (laptop, phone) = (browser(), browser());
    let first = app
        .tokens_for(&laptop, PUBLIC_CLIENT, "openid offline_access")
        .await;
    // Another code exchange in the same session is not a new session for the client.
    let again = app
        .tokens_for(&laptop, PUBLIC_CLIENT, "openid offline_access")
        .await;
    assert_eq!(
        app.refresh(refresh_token(&first)).await.status(),
        StatusCode::OK
    );
    // Sessions without this client are not counted: the global policy has no limit.
    let unrelated = app
        .tokens_for(&browser(), CONFIDENTIAL_CLIENT, "openid")
        .await;

    let second = app
        .tokens_for(&phone, PUBLIC_CLIENT, "openid offline_access")
        .await;
    assert_eq!(
        app.refresh(refresh_token(&again)).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.refresh(refresh_token(&second)).await.status(),
        StatusCode::OK
    );
    let ended = app
        .idp
        .store()
        .find_session(&sid_of(&first))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.end_reason.as_deref(), Some("policy_eviction"));
    let kept = app
        .idp
        .store()
        .find_session(&sid_of(&unrelated))
        .await
        .unwrap()
        .unwrap();
    assert!(kept.ended_at.is_none());

    let evicted = app.audit_of(AuditKind::SessionEvicted).await;
    assert_eq!(evicted.len(), 1);
    assert_eq!(evicted[0].sid.as_deref(), Some(sid_of(&first).as_str()));
    assert_eq!(evicted[0].details["evicted_by"], sid_of(&second));
    assert_eq!(evicted[0].details["client_id"], PUBLIC_CLIENT);
    assert_eq!(evicted[0].client_id.as_deref(), Some(PUBLIC_CLIENT));
    // Published like any other ending.
    let feed: Value = http()
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
async fn a_client_that_refuses_more_sessions_says_so_and_leaves_the_first_alone() {
    let app = with_policy(ClientPolicy {
        max_sessions_per_user: Some(1),
        on_session_limit: Some(SessionLimitAction::RefuseNewLogin),
        ..ClientPolicy::default()
    })
    .await;
    let (laptop, phone) = (browser(), browser());
    let first = app
        .tokens_for(&laptop, PUBLIC_CLIENT, "openid offline_access")
        .await;

    let (code, verifier) = code_in(&app, &phone, PUBLIC_CLIENT).await;
    let refused = app.exchange(PUBLIC_CLIENT, &code, &verifier).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already signed in to this application in 1 session(s)"),
        "{body}"
    );
    assert_eq!(
        app.refresh(refresh_token(&first)).await.status(),
        StatusCode::OK
    );
    // The phone's session is fine for other clients.
    let other = exchange_in(&app, &phone, CONFIDENTIAL_CLIENT).await;
    assert_eq!(other.status(), StatusCode::OK);

    let failures = app.audit_of(AuditKind::LoginFailed).await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].details["reason"], "client_session_limit");
    assert_eq!(failures[0].client_id.as_deref(), Some(PUBLIC_CLIENT));

    // Once the laptop signs out of the client, the phone may use it, with the code it was
    // refused: a refused exchange did not spend it, so its retry is no replay.
    assert_eq!(
        app.revoke(refresh_token(&first)).await.status(),
        StatusCode::OK
    );
    let retried = app.exchange(PUBLIC_CLIENT, &code, &verifier).await;
    assert_eq!(retried.status(), StatusCode::OK);
    assert!(
        app.audit_of(AuditKind::AuthorizationCodeReplayed)
            .await
            .is_empty()
    );
    assert_eq!(
        exchange_in(&app, &phone, PUBLIC_CLIENT).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_clients_idle_and_absolute_limits_end_its_refresh_tokens_not_the_session() {
    let app = with_policy(ClientPolicy {
        idle_timeout: Some(600),
        absolute_lifetime: Some(1500),
        ..ClientPolicy::default()
    })
    .await;
    let laptop = browser();
    let tokens = app
        .tokens_for(&laptop, PUBLIC_CLIENT, "openid offline_access")
        .await;
    let sid = sid_of(&tokens);

    // Idle: not refreshed for the client's 600 s (the session's idle timeout is days).
    app.clock.advance(600);
    assert_eq!(
        app.refresh(refresh_token(&tokens)).await.status(),
        StatusCode::BAD_REQUEST
    );
    let session = app.idp.store().find_session(&sid).await.unwrap().unwrap();
    assert!(session.ended_at.is_none(), "the session goes on");
    let expired = app.audit_of(AuditKind::RefreshFamilyExpired).await;
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].details["reason"], "idle_timeout");
    assert_eq!(expired[0].sid.as_deref(), Some(sid.as_str()));

    // Absolute: refreshed every 500 s, the client's tokens still stop 1500 s after sign-in.
    let tokens = app
        .tokens_for(&laptop, PUBLIC_CLIENT, "openid offline_access")
        .await;
    assert_eq!(sid_of(&tokens), sid, "same session, new family");
    let mut current = refresh_token(&tokens).to_owned();
    for _ in 0..2 {
        app.clock.advance(500);
        let response = app.refresh(&current).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        current = refresh_token(&body).to_owned();
    }
    app.clock.advance(500);
    assert_eq!(
        app.refresh(&current).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.audit_of(AuditKind::RefreshFamilyExpired).await[1].details["reason"],
        "absolute_lifetime"
    );
    assert!(
        app.idp
            .store()
            .find_session(&sid)
            .await
            .unwrap()
            .unwrap()
            .ended_at
            .is_none()
    );
}

#[tokio::test]
async fn a_clients_grace_window_replaces_the_global_one() {
    let app = with_policy(ClientPolicy {
        refresh_grace: Some(0),
        ..ClientPolicy::default()
    })
    .await;
    let tokens = app
        .tokens_for(&browser(), PUBLIC_CLIENT, "openid offline_access")
        .await;
    assert_eq!(
        app.refresh(refresh_token(&tokens)).await.status(),
        StatusCode::OK
    );
    // One second later: within the global 10 s, outside this client's 0 s. Reuse.
    app.clock.advance(1);
    assert_eq!(
        app.refresh(refresh_token(&tokens)).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.audit_of(AuditKind::RefreshTokenReuseDetected)
            .await
            .len(),
        1
    );
    let session = app
        .idp
        .store()
        .find_session(&sid_of(&tokens))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.end_reason.as_deref(), Some("refresh_token_reuse"));
}

#[tokio::test]
async fn invalid_client_policies_are_rejected() {
    let app = spawn_app().await;
    let id = ClientId::parse(PUBLIC_CLIENT).unwrap();
    for bad in [
        ClientPolicy {
            idle_timeout: Some(0),
            ..ClientPolicy::default()
        },
        ClientPolicy {
            refresh_grace: Some(-1),
            ..ClientPolicy::default()
        },
    ] {
        assert!(app.idp.set_client_policy(&id, bad).await.is_err());
    }
    let unknown = ClientId::parse("nobody").unwrap();
    assert!(
        app.idp
            .set_client_policy(&unknown, ClientPolicy::default())
            .await
            .is_err()
    );
}

/// A policy changed at one instance applies at another that has the client cached: at once
/// where the store announces changes (PostgreSQL), within the cache's second otherwise.
async fn a_policy_change_reaches_another_instance(app: TestApp, announced: bool) {
    let other = app.another_instance().await;
    let id = ClientId::parse(PUBLIC_CLIENT).unwrap();
    let cached = other.idp.find_client(PUBLIC_CLIENT).await.unwrap().unwrap();
    assert_eq!(cached.policy.max_sessions_per_user, None);
    let policy = ClientPolicy {
        max_sessions_per_user: Some(1),
        ..ClientPolicy::default()
    };
    app.idp.set_client_policy(&id, policy).await.unwrap();
    let seen = || async {
        let client = other.idp.find_client(PUBLIC_CLIENT).await.unwrap().unwrap();
        client.policy.max_sessions_per_user == Some(1)
    };
    if announced {
        // The clock stands still: only the announcement can make the other instance read again.
        let wait = async {
            while !seen().await {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), wait)
            .await
            .expect("the change is announced to the other instance");
    } else {
        assert!(!seen().await, "the cached client is used for its second");
        app.clock
            .advance(ostiary_core::client_cache::CLIENT_CACHE_TTL);
        assert!(seen().await);
    }
    other.close().await;
    app.close().await;
}

#[tokio::test]
async fn a_policy_change_reaches_another_instance_on_sqlite_within_a_second() {
    a_policy_change_reaches_another_instance(spawn_app().await, false).await;
}

#[tokio::test]
#[ignore = "needs OSTIARY_TEST_DATABASE_URL"]
async fn a_policy_change_reaches_another_instance_on_postgres_at_once() {
    a_policy_change_reaches_another_instance(spawn_app_on_postgres().await, true).await;
}
