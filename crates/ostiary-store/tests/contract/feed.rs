//! The revocation feed: order, cursor, `since`, limit, pruning and the highest seq issued.

use std::sync::Arc;

use ostiary_core::Store;
use ostiary_core::session::EndReason;

use ostiary_core::retention::Prunable;

use crate::fixtures::*;

contract!(
    the_feed_is_read_in_order_from_a_cursor_within_a_limit,
    entries_revoked_before_since_are_skipped,
    pruning_deletes_old_entries_but_the_latest_seq_remembers_them,
);

/// Publishes, in this order: three session endings at T0, T0+1, T0+2 and two access tokens
/// at T0+3, T0+4. Returns the sids.
async fn publish_five(store: &Arc<dyn Store>) -> Vec<String> {
    let alice = stored_user(store, "alice").await;
    let mut sids = Vec::new();
    for i in 0..3 {
        let s = stored_session(store, &alice, T0).await;
        assert!(
            store
                .end_session(&s.sid, T0 + i, EndReason::Logout, None)
                .await
                .unwrap()
        );
        sids.push(s.sid);
    }
    store
        .insert_revoked_access_token("jti-a", T0 + 300, T0 + 3)
        .await
        .unwrap();
    store
        .insert_revoked_access_token("jti-b", T0 + 300, T0 + 4)
        .await
        .unwrap();
    sids
}

async fn the_feed_is_read_in_order_from_a_cursor_within_a_limit(store: Arc<dyn Store>) {
    assert!(feed(&store).await.is_empty());
    let sids = publish_five(&store).await;

    let all = store.list_revocations(0, T0, 100).await.unwrap();

    let described: Vec<(Option<&str>, Option<&str>, i64, &str)> = all
        .iter()
        .map(|e| {
            (
                e.sid.as_deref(),
                e.jti.as_deref(),
                e.revoked_at,
                e.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        described,
        [
            (Some(sids[0].as_str()), None, T0, "logout"),
            (Some(sids[1].as_str()), None, T0 + 1, "logout"),
            (Some(sids[2].as_str()), None, T0 + 2, "logout"),
            (None, Some("jti-a"), T0 + 3, "access_token_revoked"),
            (None, Some("jti-b"), T0 + 4, "access_token_revoked"),
        ]
    );
    assert!(
        all.windows(2).all(|w| w[0].seq < w[1].seq),
        "strictly increasing"
    );
    assert!(all[0].seq > 0);

    let after_second = store.list_revocations(all[1].seq, T0, 100).await.unwrap();
    assert_eq!(after_second, all[2..]);
    let first_two = store.list_revocations(0, T0, 2).await.unwrap();
    assert_eq!(first_two, all[..2]);
    let next_two = store
        .list_revocations(first_two[1].seq, T0, 2)
        .await
        .unwrap();
    assert_eq!(next_two, all[2..4]);
    assert!(
        store
            .list_revocations(all[4].seq, T0, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.list_revocations(0, T0, 0).await.unwrap().is_empty());
    assert_eq!(store.latest_revocation_seq().await.unwrap(), all[4].seq);
}

async fn entries_revoked_before_since_are_skipped(store: Arc<dyn Store>) {
    publish_five(&store).await;
    let all = feed(&store).await;

    let recent = store.list_revocations(0, T0 + 2, 100).await.unwrap();
    let recent_after_cursor = store
        .list_revocations(all[3].seq, T0 + 2, 100)
        .await
        .unwrap();

    assert_eq!(recent, all[2..], "since is inclusive");
    assert_eq!(recent_after_cursor, all[4..]);
    assert!(
        store
            .list_revocations(0, T0 + 5, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn pruning_deletes_old_entries_but_the_latest_seq_remembers_them(store: Arc<dyn Store>) {
    assert_eq!(store.latest_revocation_seq().await.unwrap(), 0);
    publish_five(&store).await;
    store
        .insert_revoked_access_token("jti-old", T0 + 1, T0 + 4)
        .await
        .unwrap();
    let all = feed(&store).await;
    let latest = all.last().unwrap().seq;

    let one = store.prune(Prunable::Revocations, T0 + 2, 1).await.unwrap();
    let pruned = store
        .prune(Prunable::Revocations, T0 + 2, 100)
        .await
        .unwrap();

    assert_eq!(
        (one, pruned),
        (1, 1),
        "revoked before T0+2, exclusive, in batches"
    );
    assert_eq!(feed(&store).await, all[2..]);
    assert_eq!(store.latest_revocation_seq().await.unwrap(), latest);
    // Records of revoked access tokens that expired before the bound are forgotten too.
    assert_eq!(
        store
            .prune(Prunable::AccessTokens, T0 + 2, 100)
            .await
            .unwrap(),
        1
    );
    assert!(!store.is_access_token_revoked("jti-old").await.unwrap());
    assert!(store.is_access_token_revoked("jti-a").await.unwrap());

    assert_eq!(
        store
            .prune(Prunable::Revocations, T0 + 100, 100)
            .await
            .unwrap(),
        4
    );
    assert!(feed(&store).await.is_empty());
    assert_eq!(
        store.latest_revocation_seq().await.unwrap(),
        latest,
        "pruned entries included"
    );
    store
        .insert_revoked_access_token("jti-c", T0 + 900, T0 + 100)
        .await
        .unwrap();
    let next = feed(&store).await;
    assert_eq!(next.len(), 1);
    assert!(next[0].seq > latest, "seqs are never reused");
    assert_eq!(store.latest_revocation_seq().await.unwrap(), next[0].seq);
}
