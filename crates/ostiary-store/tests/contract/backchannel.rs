//! Back-channel logout deliveries: claims with a lease, outcomes, the undelivered list.

use std::collections::BTreeSet;
use std::sync::Arc;

use ostiary_core::Store;
use ostiary_core::session::EndReason;
use ostiary_core::store::DeliveryOutcome;

use crate::fixtures::*;

contract!(
    due_deliveries_are_claimed_for_a_lease_oldest_due_first,
    outcomes_are_recorded_and_only_pending_deliveries_are_claimed,
);

/// Ends one session per entry of `ended_at`, each with a code redeemed by the client `web`
/// (which has a logout endpoint): one delivery per ending, due at its time. Returns the sids.
pub async fn owe_deliveries(store: &Arc<dyn Store>, ended_at: &[i64]) -> Vec<String> {
    let alice = stored_user(store, "alice").await;
    let web = stored_client(store, client_with_logout("web")).await.id;
    let mut sids = Vec::new();
    for at in ended_at {
        let s = stored_session(store, &alice, T0).await;
        redeemed_code(store, &s, &web, T0).await;
        store
            .end_session(&s.sid, *at, EndReason::Logout, None)
            .await
            .unwrap();
        sids.push(s.sid);
    }
    sids
}

async fn due_deliveries_are_claimed_for_a_lease_oldest_due_first(store: Arc<dyn Store>) {
    let sids = owe_deliveries(&store, &[T0 + 10, T0 + 20]).await;

    let first = store
        .claim_backchannel_deliveries(T0 + 15, 60, 10)
        .await
        .unwrap();
    let none_due = store
        .claim_backchannel_deliveries(T0 + 16, 60, 10)
        .await
        .unwrap();
    // At T0+80 both are due again (the lease of the first ran out at T0+75): the one due
    // earlier (T0+20) comes first.
    let one = store
        .claim_backchannel_deliveries(T0 + 80, 60, 1)
        .await
        .unwrap();
    let other = store
        .claim_backchannel_deliveries(T0 + 80, 60, 10)
        .await
        .unwrap();

    assert_eq!(first.len(), 1);
    assert_eq!(first[0].sid, sids[0]);
    assert_eq!(first[0].client_id, "web");
    assert_eq!(first[0].uri, logout_uri("web").as_str());
    assert_eq!(first[0].next_attempt_at, T0 + 75, "the lease is returned");
    assert_eq!(first[0].attempts, 0);
    assert!(none_due.is_empty());
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].sid, sids[1]);
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].sid, sids[0]);
    assert!(
        store
            .claim_backchannel_deliveries(T0 + 81, 60, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let listed: Vec<(String, i64)> = store
        .list_undelivered_backchannel()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.sid, d.next_attempt_at))
        .collect();
    assert_eq!(
        listed,
        [(sids[0].clone(), T0 + 140), (sids[1].clone(), T0 + 140)],
        "oldest first"
    );
}

async fn outcomes_are_recorded_and_only_pending_deliveries_are_claimed(store: Arc<dyn Store>) {
    let sids = owe_deliveries(&store, &[T0 + 1, T0 + 2, T0 + 3]).await;
    let claimed = store
        .claim_backchannel_deliveries(T0 + 10, 60, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let id_of = |sid: &str| claimed.iter().find(|d| d.sid == sid).unwrap().id;
    let ids: BTreeSet<i64> = claimed.iter().map(|d| d.id).collect();
    assert_eq!(ids.len(), 3);

    store
        .record_backchannel_attempt(id_of(&sids[0]), T0 + 11, &DeliveryOutcome::Delivered)
        .await
        .unwrap();
    store
        .record_backchannel_attempt(
            id_of(&sids[1]),
            T0 + 11,
            &DeliveryOutcome::Retry {
                retry_at: T0 + 40,
                error: "HTTP 503".into(),
            },
        )
        .await
        .unwrap();
    store
        .record_backchannel_attempt(
            id_of(&sids[2]),
            T0 + 12,
            &DeliveryOutcome::GaveUp {
                error: "connection refused".into(),
            },
        )
        .await
        .unwrap();

    let undelivered = store.list_undelivered_backchannel().await.unwrap();
    assert_eq!(undelivered.len(), 2, "pending or given up");
    let retrying = &undelivered[0];
    assert_eq!(retrying.sid, sids[1]);
    assert_eq!(retrying.attempts, 1);
    assert_eq!(retrying.next_attempt_at, T0 + 40);
    assert_eq!(retrying.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!((retrying.delivered_at, retrying.failed_at), (None, None));
    let given_up = &undelivered[1];
    assert_eq!(given_up.sid, sids[2]);
    assert_eq!(given_up.attempts, 1);
    assert_eq!(given_up.failed_at, Some(T0 + 12));
    assert_eq!(given_up.last_error.as_deref(), Some("connection refused"));

    // Long after every lease: only the one to retry is claimed again.
    let later = store
        .claim_backchannel_deliveries(T0 + 1000, 60, 10)
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].sid, sids[1]);
    store
        .record_backchannel_attempt(later[0].id, T0 + 1001, &DeliveryOutcome::Delivered)
        .await
        .unwrap();
    let still = store.list_undelivered_backchannel().await.unwrap();
    assert_eq!(still.len(), 1);
    assert_eq!(still[0].sid, sids[2]);
    assert!(
        store
            .claim_backchannel_deliveries(T0 + 5000, 60, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
