//! What several instances share besides sessions: failed-login counters, the choice of the
//! next signing key, notifications of revocations and client changes, and readiness.

use std::sync::Arc;
use std::time::Duration;

use ostiary_core::Store;
use ostiary_core::audit::{AuditEvent, AuditKind};
use ostiary_core::client::ClientId;
use ostiary_core::keys::{SigningAlgorithm, StoredKey};
use ostiary_core::session::ClientPolicy;
use ostiary_core::session::EndReason;
use ostiary_core::store::{ChangeListener, LoginAttempt, ThrottleKey};
use ostiary_core::throttle::{LoginThrottle, ThrottlePolicy};

use crate::fixtures::*;

contract!(
    one_username_from_one_address_waits_longer_after_each_failure_and_is_reported_in_aggregate,
    the_username_and_address_ceilings_only_hold_failed_answers_back,
    parallel_attempts_cannot_slip_under_a_limit,
    parallel_successful_logins_neither_fail_nor_leave_counts_behind,
    success_forgets_the_pair_and_takes_one_failure_back_from_the_others,
    clearing_a_username_clears_its_counters_only,
    only_one_next_signing_key_per_algorithm_is_stored_and_keys_are_deleted,
    an_emergency_change_stores_withdraws_and_publishes_keys_at_once,
    racing_instances_store_one_next_key,
    changes_are_announced_to_listeners_where_the_backend_can,
    a_migrated_store_is_ready,
);

/// Limits small enough to reach: 3 failures per username and address, 8 per username, 9 per
/// address.
const POLICY: ThrottlePolicy = ThrottlePolicy {
    window: 900,
    max_failures_per_user_and_ip: 3,
    max_failures_per_user: 8,
    max_failures_per_ip: 9,
    max_delay: 300,
    max_failure_delay: 8,
};

fn keys(username: &str, ip: &str) -> Vec<ThrottleKey> {
    LoginThrottle::new(POLICY).keys(username, Some(ip))
}

async fn attempt(store: &Arc<dyn Store>, username: &str, ip: &str, at: i64) -> LoginAttempt {
    store
        .begin_login_attempt(&keys(username, ip), at, &POLICY)
        .await
        .unwrap()
}

async fn one_username_from_one_address_waits_longer_after_each_failure_and_is_reported_in_aggregate(
    store: Arc<dyn Store>,
) {
    for _ in 0..3 {
        let first = attempt(&store, "alice", "10.0.0.1", T0).await;
        assert_eq!(first.evaluation.refused_for, None);
        assert_eq!(first.evaluation.aggregate_into, None, "audited one by one");
        assert!(first.reports.is_empty());
    }
    // Three failures: the next attempt waits 1 s after the last, and is refused until then.
    let refused = attempt(&store, "alice", "10.0.0.1", T0).await;
    assert_eq!(refused.evaluation.refused_for, Some(1));
    assert_eq!(refused.evaluation.aggregate_into, Some(0));
    // The first attempt of the aggregate is reported at once ...
    assert_eq!(refused.reports.len(), 1);
    assert_eq!(refused.reports[0].key, "pair:alice|10.0.0.1");
    assert_eq!(refused.reports[0].attempts, 1);
    assert_eq!(refused.reports[0].since, T0);
    // ... then the counter's attempts are summed for a minute.
    let fourth = attempt(&store, "alice", "10.0.0.1", T0 + 1).await;
    assert_eq!(fourth.evaluation.refused_for, None, "the wait is over");
    assert!(fourth.reports.is_empty());
    assert_eq!(
        attempt(&store, "alice", "10.0.0.1", T0 + 1)
            .await
            .evaluation
            .refused_for,
        Some(2)
    );
    assert_eq!(
        attempt(&store, "alice", "10.0.0.1", T0 + 2)
            .await
            .evaluation
            .refused_for,
        Some(1)
    );
    let fifth = attempt(&store, "alice", "10.0.0.1", T0 + 3).await;
    assert_eq!(fifth.evaluation.refused_for, None);
    assert_eq!(
        attempt(&store, "alice", "10.0.0.1", T0 + 3)
            .await
            .evaluation
            .refused_for,
        Some(4)
    );
    let report = attempt(&store, "alice", "10.0.0.1", T0 + 60).await;
    assert_eq!(report.evaluation.refused_for, None);
    assert_eq!(report.reports.len(), 1);
    assert_eq!(
        report.reports[0].attempts, 6,
        "every attempt since the first report"
    );
    assert_eq!(report.reports[0].since, T0 + 1);
    // The same username from another address, and another username from this one, go ahead.
    let elsewhere = attempt(&store, "alice", "10.0.0.2", T0 + 60).await;
    assert_eq!(elsewhere.evaluation.refused_for, None);
    let other_user = attempt(&store, "bob", "10.0.0.1", T0 + 60).await;
    assert_eq!(other_user.evaluation.refused_for, None);
    // A window after the last failure the counter is forgotten.
    let later = attempt(&store, "alice", "10.0.0.1", T0 + 60 + 900).await;
    assert_eq!(later.evaluation.refused_for, None);
    assert_eq!(later.evaluation.aggregate_into, None);
}

async fn the_username_and_address_ceilings_only_hold_failed_answers_back(store: Arc<dyn Store>) {
    // Eight addresses, one failure each: the username's ceiling of 8 is reached.
    for n in 1..=8 {
        let first = attempt(&store, "alice", &format!("10.0.1.{n}"), T0).await;
        assert_eq!(first.evaluation.failure_delay, 0);
    }
    let ninth = attempt(&store, "alice", "10.0.1.9", T0).await;
    assert_eq!(
        ninth.evaluation.refused_for, None,
        "never refused for the username"
    );
    assert_eq!(ninth.evaluation.failure_delay, 1);
    assert_eq!(ninth.evaluation.aggregate_into, Some(1));
    assert_eq!(ninth.reports[0].key, "user:alice");
    let tenth = attempt(&store, "alice", "10.0.1.10", T0).await;
    assert_eq!(tenth.evaluation.failure_delay, 2);
    // One address, nine usernames: the address's ceiling of 9.
    for n in 1..=9 {
        attempt(&store, &format!("user{n}"), "10.0.2.1", T0).await;
    }
    let spray = attempt(&store, "user10", "10.0.2.1", T0).await;
    assert_eq!(spray.evaluation.refused_for, None);
    assert_eq!(spray.evaluation.failure_delay, 1);
    assert_eq!(spray.reports[0].key, "ip:10.0.2.1");
}

async fn parallel_attempts_cannot_slip_under_a_limit(store: Arc<dyn Store>) {
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .begin_login_attempt(&keys("alice", "10.0.0.1"), T0, &POLICY)
                    .await
            })
        })
        .collect();
    let mut allowed = 0;
    for attempt in attempts {
        if attempt
            .await
            .unwrap()
            .unwrap()
            .evaluation
            .refused_for
            .is_none()
        {
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
                let keys = keys("alice", "10.0.0.1");
                for _ in 0..5 {
                    let attempt = store.begin_login_attempt(&keys, T0, &POLICY).await.unwrap();
                    store
                        .record_login_success(&keys, attempt.evaluation.aggregate_into)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for login in logins {
        login.await.unwrap();
    }
    // Nothing left counted against the username or the address.
    for n in 0..3 {
        let next = attempt(&store, "alice", "10.0.0.1", T0 + 1).await;
        assert_eq!(next.evaluation.refused_for, None, "{n}");
        assert_eq!(next.evaluation.failure_delay, 0, "{n}");
    }
}

async fn success_forgets_the_pair_and_takes_one_failure_back_from_the_others(
    store: Arc<dyn Store>,
) {
    let alice = keys("alice", "10.0.0.1");
    for _ in 0..2 {
        attempt(&store, "alice", "10.0.0.1", T0).await;
    }
    let success = attempt(&store, "alice", "10.0.0.1", T0).await;
    store
        .record_login_success(&alice, success.evaluation.aggregate_into)
        .await
        .unwrap();
    // The pair starts over: three more failures before a wait.
    for _ in 0..3 {
        assert_eq!(
            attempt(&store, "alice", "10.0.0.1", T0)
                .await
                .evaluation
                .refused_for,
            None
        );
    }
    assert!(
        attempt(&store, "alice", "10.0.0.1", T0)
            .await
            .evaluation
            .refused_for
            .is_some()
    );
    // The username kept 2 + 3 = 5 failures (the success took its own back, a refusal counts
    // none): three more from elsewhere reach its ceiling of 8, and the next one is held back.
    for n in 1..=3 {
        let ip = format!("10.0.3.{n}");
        let next = attempt(&store, "alice", &ip, T0).await;
        assert_eq!(next.evaluation.failure_delay, 0);
    }
    let held = attempt(&store, "alice", "10.0.3.4", T0).await;
    assert_eq!(held.evaluation.failure_delay, 1);
    // Unknown counters are fine.
    store
        .record_login_success(&keys("bob", "10.9.9.9"), None)
        .await
        .unwrap();
    store.record_login_success(&[], None).await.unwrap();
}

async fn clearing_a_username_clears_its_counters_only(store: Arc<dyn Store>) {
    for n in 0..4 {
        attempt(&store, "alice", "10.0.0.1", T0 + n).await;
        attempt(&store, "alice", "10.0.0.2", T0 + n).await;
    }
    for n in 0..5 {
        attempt(&store, &format!("user{n}"), "10.0.0.1", T0).await;
    }
    assert!(
        attempt(&store, "alice", "10.0.0.1", T0 + 4)
            .await
            .evaluation
            .refused_for
            .is_some()
    );

    // Two pairs and the username's own counter.
    assert_eq!(store.clear_login_counters("alice").await.unwrap(), 3);
    assert_eq!(store.clear_login_counters("alice").await.unwrap(), 0);

    let after = attempt(&store, "alice", "10.0.0.1", T0 + 4).await;
    assert_eq!(after.evaluation.refused_for, None);
    // The address still counts what others did from it (4 of alice's, 5 others, and now 1).
    let spray = attempt(&store, "user9", "10.0.0.1", T0 + 4).await;
    assert!(spray.evaluation.failure_delay > 0);
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

/// Records what a store announces.
#[derive(Default)]
struct Heard {
    revocations: tokio::sync::Notify,
    clients: std::sync::Mutex<Vec<String>>,
    client_changed: tokio::sync::Notify,
}

impl ChangeListener for Heard {
    fn revocations_published(&self) {
        self.revocations.notify_waiters();
    }

    fn client_changed(&self, client_id: &str) {
        self.clients.lock().unwrap().push(client_id.to_owned());
        self.client_changed.notify_waiters();
    }

    fn notifications_lost(&self) {}
}

impl Heard {
    /// Waits until the clients heard of are `expected`.
    async fn clients_are(&self, expected: &[&str]) {
        let wait = async {
            loop {
                let changed = self.client_changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if *self.clients.lock().unwrap() == expected {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .unwrap_or_else(|_| {
                panic!("heard {:?}, not {expected:?}", self.clients.lock().unwrap())
            });
    }
}

async fn changes_are_announced_to_listeners_where_the_backend_can(store: Arc<dyn Store>) {
    let heard = Arc::new(Heard::default());
    let listening = store.listen(heard.clone()).await.unwrap();
    let user = stored_user(&store, "alice").await;
    let session = stored_session(&store, &user, T0).await;
    let woken = heard.revocations.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    store
        .end_session(&session.sid, T0 + 1, EndReason::Logout, None)
        .await
        .unwrap();

    stored_client(&store, client("app")).await;
    let policy = ClientPolicy {
        max_sessions_per_user: Some(1),
        ..ClientPolicy::default()
    };
    let app = ClientId::parse("app").unwrap();
    assert!(store.update_client_policy(&app, &policy).await.unwrap());
    let nobody = ClientId::parse("nobody").unwrap();
    assert!(!store.update_client_policy(&nobody, &policy).await.unwrap());
    if listening {
        tokio::time::timeout(Duration::from_secs(10), woken)
            .await
            .expect("the ending is announced to listeners");
        // Registered, then changed; nothing for a client that does not exist.
        heard.clients_are(&["app", "app"]).await;
    }
}

async fn a_migrated_store_is_ready(store: Arc<dyn Store>) {
    store.check_ready().await.unwrap();
}

async fn an_emergency_change_stores_withdraws_and_publishes_keys_at_once(store: Arc<dyn Store>) {
    let old = signing_key("old", SigningAlgorithm::ES256, T0);
    let retired = signing_key("retired", SigningAlgorithm::RS256, T0 - 100);
    store.insert_signing_key(&old).await.unwrap();
    store.insert_signing_key(&retired).await.unwrap();
    let fresh = signing_key("fresh", SigningAlgorithm::ES256, T0 + 10);
    let withdrawn_event = AuditEvent::new(T0 + 10, AuditKind::SigningKeyWithdrawn, "cli:ops")
        .details(serde_json::json!({"kid": "old"}));

    store
        .change_signing_keys(
            std::slice::from_ref(&fresh),
            &[
                "old".to_owned(),
                "retired".to_owned(),
                "never-was".to_owned(),
            ],
            T0 + 10,
            std::slice::from_ref(&withdrawn_event),
        )
        .await
        .unwrap();

    let kids: Vec<String> = store
        .list_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, ["fresh"]);
    let published = feed(&store).await;
    let announced: Vec<(Option<&str>, &str)> = published
        .iter()
        .map(|e| (e.kid.as_deref(), e.reason.as_str()))
        .collect();
    assert_eq!(
        announced,
        [
            (Some("old"), "signing_key_withdrawn"),
            (Some("retired"), "signing_key_withdrawn")
        ],
        "only keys that existed"
    );
    assert!(published.iter().all(|e| e.sid.is_none() && e.jti.is_none()));
    assert_eq!(
        events(&store, AuditKind::SigningKeyWithdrawn).await.len(),
        1
    );

    // Replacing a stored key changes its private key only (sealing keys stored in the clear).
    let resealed = StoredKey {
        private_pkcs8: vec![9, 9, 9].into(),
        created_at: T0 + 99,
        ..fresh.clone()
    };
    store
        .change_signing_keys(std::slice::from_ref(&resealed), &[], T0 + 20, &[])
        .await
        .unwrap();
    let stored = store.list_signing_keys().await.unwrap();
    assert_eq!(stored.len(), 1);
    use secrecy::ExposeSecret as _;
    assert_eq!(stored[0].private_pkcs8.expose_secret(), &[9, 9, 9]);
    assert_eq!(stored[0].created_at, T0, "its times stay");
    assert_eq!(feed(&store).await.len(), 2, "nothing more published");
}
