//! The shared failed-login counters (`Store::begin_login_attempt`), through the domain's
//! `LoginThrottle`, on a real database.

use std::sync::Arc;

use ostiary_core::Store;
use ostiary_core::throttle::{LoginThrottle, ThrottlePolicy};

const POLICY: ThrottlePolicy = ThrottlePolicy {
    window: 900,
    max_failures_per_user: 3,
    max_failures_per_ip: 5,
};

async fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    (dir, ostiary_store::open(&url).await.unwrap())
}

#[tokio::test]
async fn a_username_is_blocked_after_its_limit_until_the_window_ends() {
    let (_dir, store) = store().await;
    let throttle = LoginThrottle::new(POLICY);
    for _ in 0..3 {
        let attempt = throttle.begin_attempt(store.as_ref(), "alice", Some("10.0.0.1"), 100);
        assert_eq!(attempt.await.unwrap(), Ok(()));
    }
    let other_ip = throttle.begin_attempt(store.as_ref(), "ALICE", Some("10.0.0.9"), 150);
    assert_eq!(
        other_ip.await.unwrap(),
        Err(850),
        "another IP or case does not help"
    );
    let bob = throttle.begin_attempt(store.as_ref(), "bob", Some("10.0.0.9"), 150);
    assert_eq!(bob.await.unwrap(), Ok(()));
    let later = throttle.begin_attempt(store.as_ref(), "alice", None, 1000);
    assert_eq!(later.await.unwrap(), Ok(()), "the window ended");
}

#[tokio::test]
async fn parallel_attempts_cannot_slip_under_the_limit() {
    let (_dir, store) = store().await;
    let throttle = LoginThrottle::new(POLICY);
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                throttle
                    .begin_attempt(store.as_ref(), "alice", None, 0)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut admitted = 0;
    for attempt in attempts {
        if attempt.await.unwrap().is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 3);
}

#[tokio::test]
async fn an_ip_is_blocked_after_its_limit_across_usernames() {
    let (_dir, store) = store().await;
    let throttle = LoginThrottle::new(POLICY);
    for i in 0..5 {
        let user = format!("user{i}");
        let attempt = throttle.begin_attempt(store.as_ref(), &user, Some("10.0.0.1"), 0);
        assert!(attempt.await.unwrap().is_ok());
    }
    let same_ip = throttle.begin_attempt(store.as_ref(), "someone", Some("10.0.0.1"), 10);
    assert_eq!(same_ip.await.unwrap(), Err(890));
    let other_ip = throttle.begin_attempt(store.as_ref(), "someone", Some("10.0.0.2"), 10);
    assert!(other_ip.await.unwrap().is_ok());
}

#[tokio::test]
async fn success_takes_the_attempt_back() {
    let (_dir, store) = store().await;
    let throttle = LoginThrottle::new(POLICY);
    for _ in 0..6 {
        let attempt = throttle.begin_attempt(store.as_ref(), "alice", Some("10.0.0.1"), 0);
        assert!(attempt.await.unwrap().is_ok());
        throttle
            .record_success(store.as_ref(), "alice", Some("10.0.0.1"))
            .await
            .unwrap();
    }
    // Six successful logins from one address leave both counters low.
    let again = throttle.begin_attempt(store.as_ref(), "alice", Some("10.0.0.1"), 0);
    assert!(again.await.unwrap().is_ok());
    let bob = throttle.begin_attempt(store.as_ref(), "bob", Some("10.0.0.1"), 0);
    assert!(bob.await.unwrap().is_ok());
}
