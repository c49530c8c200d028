//! What several instances share besides sessions: failed-login counters, the choice of the
//! next signing key, notifications of revocations, and readiness.

use std::sync::Arc;
use std::time::Duration;

use ostiary_core::Store;
use ostiary_core::keys::{SigningAlgorithm, StoredKey};
use ostiary_core::session::EndReason;
use ostiary_core::store::{LoginAttempt, ThrottleKey};

use crate::fixtures::*;

contract!(
    a_counter_at_its_limit_blocks_until_its_window_ends,
    parallel_attempts_cannot_slip_under_a_limit,
    parallel_successful_logins_neither_fail_nor_leave_counts_behind,
    success_forgets_one_counter_and_takes_one_failure_back_from_the_other,
    only_one_next_signing_key_per_algorithm_is_stored_and_keys_are_deleted,
    racing_instances_store_one_next_key,
    a_session_ending_wakes_listeners_where_the_backend_can,
    a_migrated_store_is_ready,
);

fn keys(user_max: u32, ip_max: u32) -> Vec<ThrottleKey> {
    vec![
        ThrottleKey {
            key: "user:alice".into(),
            max_failures: user_max,
        },
        ThrottleKey {
            key: "ip:10.0.0.1".into(),
            max_failures: ip_max,
        },
    ]
}

async fn a_counter_at_its_limit_blocks_until_its_window_ends(store: Arc<dyn Store>) {
    for _ in 0..3 {
        let attempt = store.begin_login_attempt(&keys(3, 5), T0, 900).await;
        assert_eq!(attempt.unwrap(), LoginAttempt::Allowed);
    }
    let blocked = store.begin_login_attempt(&keys(3, 5), T0 + 100, 900).await;
    assert_eq!(blocked.unwrap(), LoginAttempt::Blocked { retry_after: 800 });
    // Blocked attempts count nothing: the IP has 3 of its 5.
    let other_user = [ThrottleKey {
        key: "ip:10.0.0.1".into(),
        max_failures: 5,
    }];
    for _ in 0..2 {
        let attempt = store.begin_login_attempt(&other_user, T0 + 100, 900).await;
        assert_eq!(attempt.unwrap(), LoginAttempt::Allowed);
    }
    let ip_full = store.begin_login_attempt(&other_user, T0 + 100, 900).await;
    assert_eq!(ip_full.unwrap(), LoginAttempt::Blocked { retry_after: 800 });
    // The window ends; counting starts over.
    let later = store.begin_login_attempt(&keys(3, 5), T0 + 900, 900).await;
    assert_eq!(later.unwrap(), LoginAttempt::Allowed);
}

async fn parallel_attempts_cannot_slip_under_a_limit(store: Arc<dyn Store>) {
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.begin_login_attempt(&keys(3, 50), T0, 900).await })
        })
        .collect();
    let mut allowed = 0;
    for attempt in attempts {
        if attempt.await.unwrap().unwrap() == LoginAttempt::Allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 3);
}

async fn parallel_successful_logins_neither_fail_nor_leave_counts_behind(store: Arc<dyn Store>) {
    // Sixteen sign-ins of one user from one address at once, each counted, then taken back:
    // the counters are locked in one order by both steps, so nothing deadlocks.
    let logins: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..5 {
                    let attempt = store.begin_login_attempt(&keys(1000, 1000), T0, 900).await;
                    assert_eq!(attempt.unwrap(), LoginAttempt::Allowed);
                    store
                        .record_login_success("user:alice", Some("ip:10.0.0.1"))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for login in logins {
        login.await.unwrap();
    }
    // Nothing left counted against the address: it still has all of a limit of 3.
    let ip_only = [ThrottleKey {
        key: "ip:10.0.0.1".into(),
        max_failures: 3,
    }];
    for _ in 0..3 {
        let attempt = store.begin_login_attempt(&ip_only, T0, 900).await;
        assert_eq!(attempt.unwrap(), LoginAttempt::Allowed);
    }
}

async fn success_forgets_one_counter_and_takes_one_failure_back_from_the_other(
    store: Arc<dyn Store>,
) {
    for _ in 0..6 {
        let attempt = store.begin_login_attempt(&keys(3, 5), T0, 900).await;
        assert_eq!(attempt.unwrap(), LoginAttempt::Allowed);
        store
            .record_login_success("user:alice", Some("ip:10.0.0.1"))
            .await
            .unwrap();
    }
    // Six successes leave both counters at zero.
    for _ in 0..3 {
        let attempt = store.begin_login_attempt(&keys(3, 3), T0, 900).await;
        assert_eq!(attempt.unwrap(), LoginAttempt::Allowed);
    }
    // Unknown counters are fine.
    store.record_login_success("user:bob", None).await.unwrap();
}

fn signing_key(kid: &str, alg: SigningAlgorithm, activates_at: i64) -> StoredKey {
    StoredKey {
        kid: kid.into(),
        alg,
        private_pkcs8: vec![1, 2, 3].into(),
        created_at: T0,
        activates_at,
    }
}

async fn only_one_next_signing_key_per_algorithm_is_stored_and_keys_are_deleted(
    store: Arc<dyn Store>,
) {
    let es = SigningAlgorithm::ES256;
    store
        .insert_signing_key(&signing_key("current", es, T0))
        .await
        .unwrap();
    let next = signing_key("next", es, T0 + 3600);
    assert!(store.insert_next_signing_key(&next, T0).await.unwrap());
    let second = signing_key("second", es, T0 + 7200);
    assert!(!store.insert_next_signing_key(&second, T0).await.unwrap());
    // Another algorithm has its own next key.
    let rs = signing_key("rs-next", SigningAlgorithm::RS256, T0 + 3600);
    assert!(store.insert_next_signing_key(&rs, T0).await.unwrap());
    // Once the next key signs, another may be published.
    assert!(
        store
            .insert_next_signing_key(&second, T0 + 3600)
            .await
            .unwrap()
    );

    let listed: Vec<(String, i64)> = store
        .list_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.activates_at))
        .collect();
    assert_eq!(listed.len(), 4);
    assert!(listed.contains(&("next".into(), T0 + 3600)));
    assert!(store.delete_signing_key("current").await.unwrap());
    assert!(!store.delete_signing_key("current").await.unwrap());
    assert_eq!(store.list_signing_keys().await.unwrap().len(), 3);
}

async fn racing_instances_store_one_next_key(store: Arc<dyn Store>) {
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let key = signing_key(&format!("k{i}"), SigningAlgorithm::ES256, T0 + 3600);
                store.insert_next_signing_key(&key, T0).await.unwrap()
            })
        })
        .collect();
    let mut stored = 0;
    for racer in racers {
        if racer.await.unwrap() {
            stored += 1;
        }
    }
    assert_eq!(stored, 1);
    assert_eq!(store.list_signing_keys().await.unwrap().len(), 1);

    // Instances starting together on an empty database: one first key per algorithm.
    let starters: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let key = signing_key(&format!("first{i}"), SigningAlgorithm::RS256, T0);
                store.insert_next_signing_key(&key, i64::MIN).await.unwrap()
            })
        })
        .collect();
    let mut first = 0;
    for starter in starters {
        if starter.await.unwrap() {
            first += 1;
        }
    }
    assert_eq!(first, 1);
    assert_eq!(store.list_signing_keys().await.unwrap().len(), 2);
}

async fn a_session_ending_wakes_listeners_where_the_backend_can(store: Arc<dyn Store>) {
    let wake = Arc::new(tokio::sync::Notify::new());
    let listening = store.listen_for_revocations(wake.clone()).await.unwrap();
    let user = stored_user(&store, "alice").await;
    let session = stored_session(&store, &user, T0).await;
    let woken = wake.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    store
        .end_session(&session.sid, T0 + 1, EndReason::Logout, None)
        .await
        .unwrap();
    if listening {
        tokio::time::timeout(Duration::from_secs(10), woken)
            .await
            .expect("the ending is announced to listeners");
    }
}

async fn a_migrated_store_is_ready(store: Arc<dyn Store>) {
    store.check_ready().await.unwrap();
}
