//! Following a revocation feed: revoked sessions and tokens are rejected, memory stays bounded
//! by one access-token lifetime, and an unreachable feed is handled as configured.

use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ostiary_verify::{FailMode, RevocationFeed};
use serde_json::{Value, json};

use crate::harness::*;

#[derive(Default)]
struct Feed {
    entries: Vec<Value>,
    down: bool,
}

struct FeedServer {
    url: String,
    feed: Arc<Mutex<Feed>>,
}

impl FeedServer {
    async fn start() -> Self {
        let feed = Arc::new(Mutex::new(Feed::default()));
        let app = axum::Router::new()
            .route(
                "/revocations",
                get(|State(feed): State<Arc<Mutex<Feed>>>, Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    let feed = feed.lock().unwrap();
                    if feed.down {
                        return StatusCode::SERVICE_UNAVAILABLE.into_response();
                    }
                    let after: i64 = q.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
                    // Pages of at most 100 entries, like a real feed with a limit.
                    let entries: Vec<Value> =
                        feed.entries.iter().filter(|e| e["seq"].as_i64().unwrap() > after).take(100).cloned().collect();
                    let latest = feed.entries.last().map_or(0, |e| e["seq"].as_i64().unwrap());
                    // Like the IdP: a cursor from another (reset) database goes back to 0.
                    let cursor = match entries.last() {
                        Some(e) => e["seq"].as_i64().unwrap(),
                        None if after > latest => 0,
                        None => after,
                    };
                    let response: Response = axum::Json(json!({"entries": entries, "cursor": cursor})).into_response();
                    response
                }),
            )
            .with_state(feed.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/revocations", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, feed }
    }

    fn publish(&self, sid: Option<&str>, jti: Option<&str>, revoked_at: i64) {
        let mut feed = self.feed.lock().unwrap();
        let seq = feed.entries.len() as i64 + 1;
        feed.entries.push(json!({"seq": seq, "sid": sid, "jti": jti, "revoked_at": revoked_at, "expires_at": revoked_at + 300, "reason": "logout"}));
    }

    fn set_down(&self, down: bool) {
        self.feed.lock().unwrap().down = down;
    }
}

fn token_for(key: &TestKey, sid: &str, jti: &str, now: i64) -> String {
    let mut claims = claims_at(now);
    claims["sid"] = json!(sid);
    claims["jti"] = json!(jti);
    key.token(&claims)
}

fn following(
    server: &FeedServer,
    key: &TestKey,
    clock: Arc<TestClock>,
    mode: FailMode,
) -> (ostiary_verify::Validator, RevocationFeed) {
    let feed = RevocationFeed::new(&server.url)
        .unwrap()
        .with_clock(clock.clone())
        .with_fail_mode(mode);
    let validator = static_validator(&[key])
        .with_clock(clock)
        .with_revocation_feed(feed.clone());
    (validator, feed)
}

#[tokio::test]
async fn revoked_sessions_and_tokens_are_rejected_and_others_are_not() {
    let server = FeedServer::start().await;
    let key = TestKey::es256("k1");
    let clock = TestClock::at(NOW);
    let (validator, feed) = following(&server, &key, clock, FailMode::Open);
    server.publish(Some("sid-gone"), None, NOW);
    server.publish(None, Some("jti-gone"), NOW);
    assert_eq!(feed.poll_once().await.unwrap(), 2);
    let revoked = |e: ostiary_verify::ValidationError| e.reason() == "revoked";
    assert!(revoked(
        validator
            .validate(&token_for(&key, "sid-gone", "j1", NOW))
            .await
            .unwrap_err()
    ));
    assert!(revoked(
        validator
            .validate(&token_for(&key, "sid-ok", "jti-gone", NOW))
            .await
            .unwrap_err()
    ));
    assert!(
        validator
            .validate(&token_for(&key, "sid-ok", "j2", NOW))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn memory_is_bounded_by_the_revocations_of_one_access_token_lifetime() {
    let server = FeedServer::start().await;
    let key = TestKey::es256("k1");
    let clock = TestClock::at(NOW);
    let (_validator, feed) = following(&server, &key, clock.clone(), FailMode::Open);
    // A steady stream of logouts over an hour: 10 a second, read every second.
    let mut most = 0;
    for second in 0..3600 {
        for i in 0..10 {
            server.publish(Some(&format!("s{second}-{i}")), None, NOW + second);
        }
        if second % 60 == 59 {
            feed.poll_once().await.unwrap();
            most = most.max(feed.len().await);
        }
        clock.advance(1);
    }
    // At most one lifetime (300 s) plus the validator's leeway (30 s) of revocations is ever
    // held, however long this runs.
    assert!(most <= (300 + 30) * 10, "held {most}");
    assert!(feed.len().await <= (300 + 30) * 10);
    clock.advance(331);
    feed.poll_once().await.unwrap();
    assert!(
        feed.is_empty().await,
        "entries are forgotten once no token they concern can be valid"
    );
}

#[tokio::test]
async fn an_unreachable_feed_fails_open_by_default_and_catches_up_from_its_cursor() {
    let server = FeedServer::start().await;
    let key = TestKey::es256("k1");
    let clock = TestClock::at(NOW);
    let (validator, feed) = following(&server, &key, clock.clone(), FailMode::Open);
    feed.poll_once().await.unwrap();
    server.set_down(true);
    server.publish(Some("sid-during-outage"), None, NOW);
    assert!(feed.poll_once().await.is_err());
    clock.advance(120);
    let token = token_for(&key, "sid-during-outage", "j1", NOW + 120);
    assert!(
        validator.validate(&token).await.is_ok(),
        "fail-open: valid tokens still pass"
    );
    server.set_down(false);
    assert_eq!(
        feed.poll_once().await.unwrap(),
        1,
        "resumes from the cursor"
    );
    assert_eq!(
        validator.validate(&token).await.unwrap_err().reason(),
        "revoked"
    );
}

#[tokio::test]
async fn a_fail_closed_feed_rejects_everything_while_stale_and_recovers() {
    let server = FeedServer::start().await;
    let key = TestKey::es256("k1");
    let clock = TestClock::at(NOW);
    let (validator, feed) = following(&server, &key, clock.clone(), FailMode::Closed);
    let token = |now| token_for(&key, "sid", "j", now);
    assert_eq!(
        validator.validate(&token(NOW)).await.unwrap_err().reason(),
        "revocation_feed_unavailable",
        "never read yet"
    );
    feed.poll_once().await.unwrap();
    assert!(validator.validate(&token(NOW)).await.is_ok());
    server.set_down(true);
    clock.advance(61);
    assert!(feed.poll_once().await.is_err());
    let error = validator.validate(&token(NOW + 61)).await.unwrap_err();
    assert_eq!(error.reason(), "revocation_feed_unavailable");
    assert!(error.is_unavailable(), "a server-side outage: 503, not 401");
    server.set_down(false);
    feed.poll_once().await.unwrap();
    assert!(validator.validate(&token(NOW + 61)).await.is_ok());
}

#[test]
fn a_feed_url_must_be_https_or_loopback() {
    assert!(RevocationFeed::new("http://idp.example/revocations").is_err());
    assert!(RevocationFeed::new("https://idp.example/revocations").is_ok());
    assert!(RevocationFeed::new("http://127.0.0.1:8080/revocations").is_ok());
    assert!(RevocationFeed::new("not a url").is_err());
}

#[tokio::test]
async fn a_revoked_token_stays_rejected_through_the_validators_leeway() {
    let server = FeedServer::start().await;
    let key = TestKey::es256("k1");
    let clock = TestClock::at(NOW);
    // The validator accepts tokens until exp + 30 s (its default leeway); the entry's
    // expires_at is revoked_at + 300 = the token's exp.
    let (validator, feed) = following(&server, &key, clock.clone(), FailMode::Open);
    let token = token_for(&key, "sid-gone", "j1", NOW);
    server.publish(Some("sid-gone"), None, NOW);
    feed.poll_once().await.unwrap();
    clock.advance(300 + 20); // past expires_at, still inside the leeway
    feed.poll_once().await.unwrap();
    assert_eq!(
        validator.validate(&token).await.unwrap_err().reason(),
        "revoked"
    );
    clock.advance(20); // past exp + leeway: expired, and the entry may go
    feed.poll_once().await.unwrap();
    assert_eq!(
        validator.validate(&token).await.unwrap_err().reason(),
        "expired"
    );
    assert!(feed.is_empty().await);
}

#[tokio::test]
async fn after_the_idp_database_is_reset_the_follower_starts_over() {
    let server = FeedServer::start().await;
    let key = TestKey::es256("k1");
    let clock = TestClock::at(NOW);
    let (validator, feed) = following(&server, &key, clock, FailMode::Open);
    for i in 0..5 {
        server.publish(Some(&format!("old-{i}")), None, NOW);
    }
    feed.poll_once().await.unwrap();
    assert_eq!(feed.cursor().await, 5);
    // A fresh IdP database: sequence numbers start again at 1.
    server.feed.lock().unwrap().entries.clear();
    server.publish(Some("sid-after-reset"), None, NOW);
    feed.poll_once().await.unwrap();
    assert_eq!(feed.cursor().await, 1);
    let token = token_for(&key, "sid-after-reset", "j1", NOW);
    assert_eq!(
        validator.validate(&token).await.unwrap_err().reason(),
        "revoked"
    );
}
