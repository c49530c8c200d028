//! The audit log: appended with increasing ids, read back with filters, newest last.

use std::sync::Arc;

use ostiary_core::Store;
use ostiary_core::audit::{AuditEvent, AuditFilter, AuditKind};

use crate::fixtures::*;

contract!(
    audit_events_round_trip_with_increasing_ids,
    audit_filters_combine_and_a_limit_keeps_the_newest,
);

fn event(at: i64, kind: AuditKind, user: &str, sid: &str) -> AuditEvent {
    AuditEvent::new(at, kind, "user")
        .user(user)
        .session(sid)
        .details(serde_json::json!({"at": at}))
}

async fn audit_events_round_trip_with_increasing_ids(store: Arc<dyn Store>) {
    let full = AuditEvent::new(T0, AuditKind::LoginFailed, "user")
        .client("web")
        .origin(Some("2001:db8::1"), Some("Mozilla/5.0 ünïcødé"))
        .details(serde_json::json!({"reason": "bad_password", "nested": {"n": [1, 2.5, null]}}));
    let bare = AuditEvent::new(T0 + 1, AuditKind::SigningKeyGenerated, "system");

    store.insert_audit_event(&full).await.unwrap();
    store.insert_audit_event(&bare).await.unwrap();

    let all = store
        .list_audit_events(&AuditFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[0].id > 0 && all[0].id < all[1].id);
    assert_eq!(
        AuditEvent {
            id: 0,
            ..all[0].clone()
        },
        full
    );
    assert_eq!(
        AuditEvent {
            id: 0,
            ..all[1].clone()
        },
        bare
    );
}

async fn audit_filters_combine_and_a_limit_keeps_the_newest(store: Arc<dyn Store>) {
    let written = [
        event(T0, AuditKind::LoginSucceeded, "alice", "s1"),
        event(T0 + 10, AuditKind::RefreshRotated, "alice", "s1"),
        event(T0 + 20, AuditKind::LoginSucceeded, "bob", "s2"),
        event(T0 + 30, AuditKind::SessionEnded, "alice", "s1"),
        event(T0 + 40, AuditKind::LoginSucceeded, "alice", "s3"),
    ];
    for e in &written {
        store.insert_audit_event(e).await.unwrap();
    }
    let read = |filter: AuditFilter| {
        let store = Arc::clone(&store);
        async move {
            store
                .list_audit_events(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.at - T0)
                .collect::<Vec<_>>()
        }
    };

    assert_eq!(read(AuditFilter::default()).await, [0, 10, 20, 30, 40]);
    assert_eq!(
        read(AuditFilter {
            user_id: Some("alice".into()),
            ..AuditFilter::default()
        })
        .await,
        [0, 10, 30, 40]
    );
    assert_eq!(
        read(AuditFilter {
            sid: Some("s1".into()),
            ..AuditFilter::default()
        })
        .await,
        [0, 10, 30]
    );
    assert_eq!(
        read(AuditFilter {
            kind: Some(AuditKind::LoginSucceeded),
            ..AuditFilter::default()
        })
        .await,
        [0, 20, 40]
    );
    assert_eq!(
        read(AuditFilter {
            since: Some(T0 + 10),
            until: Some(T0 + 30),
            ..AuditFilter::default()
        })
        .await,
        [10, 20],
        "since inclusive, until exclusive"
    );
    assert_eq!(
        read(AuditFilter {
            user_id: Some("alice".into()),
            kind: Some(AuditKind::LoginSucceeded),
            since: Some(T0 + 1),
            ..AuditFilter::default()
        })
        .await,
        [40]
    );
    assert_eq!(
        read(AuditFilter {
            limit: Some(2),
            ..AuditFilter::default()
        })
        .await,
        [30, 40],
        "the newest, oldest first"
    );
    assert_eq!(
        read(AuditFilter {
            user_id: Some("alice".into()),
            limit: Some(3),
            ..AuditFilter::default()
        })
        .await,
        [10, 30, 40]
    );
    // Each statement an index drives (by user, by session) keeps the other filters.
    assert_eq!(
        read(AuditFilter {
            user_id: Some("alice".into()),
            sid: Some("s3".into()),
            ..AuditFilter::default()
        })
        .await,
        [40]
    );
    assert_eq!(
        read(AuditFilter {
            sid: Some("s1".into()),
            kind: Some(AuditKind::LoginSucceeded),
            ..AuditFilter::default()
        })
        .await,
        [0]
    );
    assert_eq!(
        read(AuditFilter {
            sid: Some("s1".into()),
            until: Some(T0 + 30),
            limit: Some(1),
            ..AuditFilter::default()
        })
        .await,
        [10]
    );
    assert!(
        read(AuditFilter {
            user_id: Some("bob".into()),
            sid: Some("s1".into()),
            ..AuditFilter::default()
        })
        .await
        .is_empty()
    );
    assert!(
        read(AuditFilter {
            user_id: Some("carol".into()),
            ..AuditFilter::default()
        })
        .await
        .is_empty()
    );
}
