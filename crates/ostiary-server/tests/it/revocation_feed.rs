//! The revocation feed: every way a session ends is published, and a resource server that
//! follows the feed rejects the session's tokens at once, not when they expire.

use std::sync::Arc;

use ostiary_core::clock::Clock as _;
use ostiary_verify::{RevocationFeed, Validator};
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::*;

/// A validator for the test API that follows the IdP's feed (read explicitly with
/// `poll_once`, so the tests are driven by events, not timers).
fn following(app: &TestApp) -> (Validator, RevocationFeed) {
    let feed = RevocationFeed::new(&app.url("/revocations"))
        .unwrap()
        .with_clock(Arc::new(SharedClock(app.clock.clone())));
    (app.validator().with_revocation_feed(feed.clone()), feed)
}

async fn signed_in(app: &TestApp) -> Value {
    app.tokens_for(&browser(), PUBLIC_CLIENT, "openid offline_access")
        .await
}

fn at(tokens: &Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

#[tokio::test]
async fn after_logout_the_verifier_rejects_the_old_access_token_once_the_feed_is_read() {
    let app = spawn_app().await;
    let (validator, feed) = following(&app);
    let tokens = signed_in(&app).await;
    feed.poll_once().await.unwrap();
    assert!(validator.validate(at(&tokens)).await.is_ok());

    let logout = http()
        .get(app.url("/logout"))
        .query(&[("id_token_hint", tokens["id_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    assert_eq!(feed.poll_once().await.unwrap(), 1);
    assert_eq!(
        validator.validate(at(&tokens)).await.unwrap_err().reason(),
        "revoked"
    );
    // Another session of the same user is untouched.
    let other = signed_in(&app).await;
    feed.poll_once().await.unwrap();
    assert!(validator.validate(at(&other)).await.is_ok());
}

#[tokio::test]
async fn theft_detection_and_access_token_revocation_reach_the_verifier() {
    let app = spawn_app().await;
    let (validator, feed) = following(&app);

    let tokens = signed_in(&app).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refreshed: Value = app.refresh(&first).await.json().await.unwrap();
    let refreshed: Value = app
        .refresh(refreshed["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    app.clock.advance(60);
    assert_eq!(app.refresh(&first).await.status(), StatusCode::BAD_REQUEST);
    feed.poll_once().await.unwrap();
    assert_eq!(
        validator
            .validate(at(&refreshed))
            .await
            .unwrap_err()
            .reason(),
        "revoked"
    );

    let single = signed_in(&app).await;
    assert_eq!(app.revoke(at(&single)).await.status(), StatusCode::OK);
    feed.poll_once().await.unwrap();
    assert_eq!(
        validator.validate(at(&single)).await.unwrap_err().reason(),
        "revoked"
    );
}

#[tokio::test]
async fn the_feed_pages_from_a_cursor_and_forgets_entries_after_one_access_token_lifetime() {
    let app = spawn_app().await;
    for _ in 0..3 {
        let tokens = signed_in(&app).await;
        app.idp
            .end_session(
                claims(at(&tokens))["sid"].as_str().unwrap(),
                ostiary_core::session::EndReason::Logout,
            )
            .await
            .unwrap();
    }
    let page: Value = http()
        .get(app.url("/revocations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(page["retention"], 300);
    assert_eq!(entries[0]["reason"], "logout");
    assert_eq!(
        entries[0]["expires_at"].as_i64().unwrap(),
        entries[0]["revoked_at"].as_i64().unwrap() + 300
    );
    let cursor = entries[1]["seq"].as_i64().unwrap();
    let rest: Value = http()
        .get(app.url(&format!("/revocations?after={cursor}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["entries"].as_array().unwrap().len(), 1);
    app.clock.advance(301);
    let later: Value = http()
        .get(app.url("/revocations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        later["entries"].as_array().unwrap().is_empty(),
        "nothing older than one access-token lifetime"
    );
    // A cursor the feed issued stays put; one beyond anything it ever issued (from a reset
    // database) is sent back to the start.
    let same: Value = http()
        .get(app.url(&format!("/revocations?after={cursor}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(same["cursor"], cursor);
    let foreign: Value = http()
        .get(app.url("/revocations?after=999"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(foreign["cursor"], 0);
    let bad = http()
        .get(app.url("/revocations?after=-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_stream_pushes_a_revocation_as_it_happens() {
    let app = spawn_app().await;
    let tokens = signed_in(&app).await;
    let sid = claims(at(&tokens))["sid"].as_str().unwrap().to_owned();
    let mut stream = http()
        .get(app.url("/revocations/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    app.idp
        .end_session(&sid, ostiary_core::session::EndReason::Logout)
        .await
        .unwrap();
    let mut received = String::new();
    while !received.contains("\n\n") {
        let chunk = stream
            .chunk()
            .await
            .unwrap()
            .expect("the stream stays open");
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(received.contains("event: revocation"), "{received}");
    assert!(received.contains(&sid), "{received}");
    assert!(received.contains("id: 1"), "{received}");

    // A shutting-down server ends the stream cleanly instead of waiting on it.
    let mut app = app;
    app.restart().await;
    assert!(
        stream.chunk().await.expect("a clean end").is_none(),
        "the stream ends with the server"
    );
}

/// Waits (at most 10 s) until the follower's cursor is at least `seq`.
async fn reaches(progress: &mut tokio::sync::watch::Receiver<i64>, seq: i64, what: &str) {
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        progress.wait_for(|cursor| *cursor >= seq),
    )
    .await
    .expect(what)
    .expect("the follower runs");
}

#[tokio::test]
async fn a_following_verifier_gets_revocations_pushed_by_the_stream() {
    let app = spawn_app().await;
    let (validator, feed) = following(&app);
    let mut progress = feed.subscribe();
    // Polling once an hour: after the first read, only the stream can deliver anything.
    let follower = feed.spawn(std::time::Duration::from_secs(3600));
    progress.changed().await.unwrap();
    let tokens = signed_in(&app).await;
    assert!(validator.validate(at(&tokens)).await.is_ok());

    let logout = http()
        .get(app.url("/logout"))
        .query(&[("id_token_hint", tokens["id_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    reaches(&mut progress, 1, "the stream delivers the logout").await;
    assert_eq!(
        validator.validate(at(&tokens)).await.unwrap_err().reason(),
        "revoked"
    );

    // A revocation written by another process (here: straight into the store, as the CLI
    // does) is pushed too, at the stream's next re-read.
    let other = signed_in(&app).await;
    let sid = claims(at(&other))["sid"].as_str().unwrap().to_owned();
    app.idp
        .store()
        .end_session(
            &sid,
            app.clock.now(),
            ostiary_core::session::EndReason::AdminRevoked,
            None,
        )
        .await
        .unwrap();
    reaches(
        &mut progress,
        2,
        "the stream delivers what another process published",
    )
    .await;
    assert_eq!(
        validator.validate(at(&other)).await.unwrap_err().reason(),
        "revoked"
    );
    follower.abort();
}

#[tokio::test]
async fn open_streams_are_bounded_and_a_closed_one_frees_its_place() {
    let app = spawn_app_with_server(|c| c.max_revocation_streams = 2).await;
    let open = || http().get(app.url("/revocations/stream")).send();
    let first = open().await.unwrap();
    let second = open().await.unwrap();
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let third = open().await.unwrap();
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(third.headers()["retry-after"], "30");
    let body: Value = third.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    // Polling still works.
    let poll = http().get(app.url("/revocations")).send().await.unwrap();
    assert_eq!(poll.status(), StatusCode::OK);

    drop(first);
    // The server notices the closed connection when it next writes to it; until then the
    // place is taken. Ending a session makes every stream write.
    let user = app.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await;
    app.idp
        .end_session(&sid_of(&user), ostiary_core::session::EndReason::Logout)
        .await
        .unwrap();
    let again = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let response = open().await.unwrap();
            if response.status() == StatusCode::OK {
                break response;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("a place frees up");
    assert_eq!(again.status(), StatusCode::OK);
    drop(second);
}

#[tokio::test]
async fn introspection_answers_active_tokens_and_only_active_false_for_the_rest() {
    let app = spawn_app().await;
    let tokens = signed_in(&app).await;
    let active: Value = app.introspect(at(&tokens)).await.json().await.unwrap();
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], PUBLIC_CLIENT);
    assert_eq!(active["username"], USERNAME);
    assert_eq!(active["token_type"], "Bearer");

    let inactive = [
        tokens["refresh_token"].as_str().unwrap().to_owned(),
        tokens["id_token"].as_str().unwrap().to_owned(),
        "garbage".to_owned(),
    ];
    for token in &inactive {
        let answer: Value = app.introspect(token).await.json().await.unwrap();
        assert_eq!(answer, serde_json::json!({"active": false}), "{token}");
    }
    // Revoked (its session ended), then also expired.
    app.idp
        .end_session(
            claims(at(&tokens))["sid"].as_str().unwrap(),
            ostiary_core::session::EndReason::Logout,
        )
        .await
        .unwrap();
    assert_eq!(
        app.introspect(at(&tokens))
            .await
            .json::<Value>()
            .await
            .unwrap(),
        serde_json::json!({"active": false})
    );
    let fresh = signed_in(&app).await;
    app.clock.advance(301);
    assert_eq!(
        app.introspect(at(&fresh))
            .await
            .json::<Value>()
            .await
            .unwrap(),
        serde_json::json!({"active": false})
    );

    // A resource server learns nothing of tokens meant for other resources (RFC 7662 §4).
    let (_, other_secret) = app
        .idp
        .add_client(ostiary_core::idp::NewClient {
            id: ostiary_core::client::ClientId::parse("other-rs").unwrap(),
            kind: ostiary_core::client::ClientKind::Confidential,
            redirect_uris: vec![ostiary_core::client::RedirectUri::parse(REDIRECT_URI).unwrap()],
            post_logout_redirect_uris: vec![],
            resources: vec![OTHER_API.into()],
            extra_scopes: vec![],
            web_origins: vec![],
            backchannel_logout_uri: None,
            policy: Default::default(),
        })
        .await
        .unwrap();
    let third = signed_in(&app).await;
    assert_eq!(
        app.introspect(at(&third))
            .await
            .json::<Value>()
            .await
            .unwrap()["active"],
        true
    );
    let foreign: Value = http()
        .post(app.url("/introspect"))
        .basic_auth("other-rs", Some(other_secret.unwrap().expose()))
        .form(&[("token", at(&third))])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(foreign, serde_json::json!({"active": false}));

    // Only authenticated confidential clients may ask.
    let public = http()
        .post(app.url("/introspect"))
        .form(&[("token", at(&fresh)), ("client_id", PUBLIC_CLIENT)])
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), StatusCode::UNAUTHORIZED);
    let anonymous = http()
        .post(app.url("/introspect"))
        .form(&[("token", at(&fresh))])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_password_change_ends_every_session_and_is_published() {
    let app = spawn_app().await;
    let (validator, feed) = following(&app);
    let laptop = signed_in(&app).await;
    let phone = signed_in(&app).await;
    app.idp
        .set_password(
            &ostiary_core::user::Username::parse(USERNAME).unwrap(),
            ostiary_core::secret::Password::new("a-new-passw0rd"),
        )
        .await
        .unwrap();
    assert_eq!(feed.poll_once().await.unwrap(), 2);
    for tokens in [&laptop, &phone] {
        assert_eq!(
            validator.validate(at(tokens)).await.unwrap_err().reason(),
            "revoked"
        );
        assert_eq!(
            app.refresh(tokens["refresh_token"].as_str().unwrap())
                .await
                .status(),
            StatusCode::BAD_REQUEST
        );
    }
    // The old password no longer signs in; the new one does.
    assert_eq!(
        app.login(&browser(), USERNAME, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login(&browser(), USERNAME, "a-new-passw0rd")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
}
