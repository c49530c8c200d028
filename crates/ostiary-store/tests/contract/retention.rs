//! What the retention job needs: a lease one process holds at a time, the sessions whose time
//! is up, deletion in batches of what no longer matters (each kind with what belongs to it),
//! forgotten failed-login counters, and row counts.

use std::collections::HashMap;
use std::sync::Arc;

use ostiary_core::Store;
use ostiary_core::audit::{AuditEvent, AuditKind};
use ostiary_core::retention::Prunable;
use ostiary_core::session::EndReason;
use ostiary_core::store::DeliveryOutcome;
use ostiary_core::throttle::{CounterKind, LoginThrottle, ThrottlePolicy};

use crate::fixtures::*;

contract!(
    a_job_is_held_by_one_process_at_a_time_until_its_lease_ends,
    sessions_past_their_limits_are_listed_oldest_first,
    an_ended_session_goes_with_everything_of_it_and_only_once_old_enough,
    codes_access_tokens_deliveries_and_audit_events_go_in_batches_past_their_cut_off,
    forgotten_login_counters_go_and_report_what_they_still_held,
    row_counts_name_every_table,
);

async fn counts(store: &Arc<dyn Store>) -> HashMap<String, u64> {
    store.row_counts().await.unwrap().into_iter().collect()
}

async fn a_job_is_held_by_one_process_at_a_time_until_its_lease_ends(store: Arc<dyn Store>) {
    assert!(store.claim_job("retention", "a", T0, 300).await.unwrap());
    assert!(
        !store
            .claim_job("retention", "b", T0 + 1, 300)
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_job("retention", "b", T0 + 299, 300)
            .await
            .unwrap()
    );
    // The holder renews; another job is another lease.
    assert!(
        store
            .claim_job("retention", "a", T0 + 10, 300)
            .await
            .unwrap()
    );
    assert!(store.claim_job("other", "b", T0 + 10, 300).await.unwrap());
    assert!(
        !store
            .claim_job("retention", "b", T0 + 309, 300)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_job("retention", "b", T0 + 310, 300)
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_job("retention", "a", T0 + 311, 300)
            .await
            .unwrap()
    );
}

async fn sessions_past_their_limits_are_listed_oldest_first(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;
    let old = stored_session(&store, &alice, T0).await;
    let idle = stored_session(&store, &alice, T0 + 100).await;
    let fresh = stored_session(&store, &alice, T0 + 5000).await;
    let ended = stored_session(&store, &alice, T0).await;
    store
        .end_session(&ended.sid, T0 + 1, EndReason::Logout, None)
        .await
        .unwrap();
    store.touch_session(&old.sid, T0 + 4000).await.unwrap();

    // Idle since before T0 + 1000, or created before T0 + 10: `old` by its age, `idle` by
    // its idleness; `fresh` neither, `ended` is over already.
    let expired = store
        .list_expired_sessions(T0 + 1000, T0 + 10, 10)
        .await
        .unwrap();
    let sids: Vec<&str> = expired.iter().map(|s| s.sid.as_str()).collect();
    assert_eq!(sids, [idle.sid.as_str(), old.sid.as_str()]);
    let one = store
        .list_expired_sessions(T0 + 1000, T0 + 10, 1)
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert!(
        store
            .list_expired_sessions(T0, T0 - 1, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(fresh.ended_at.is_none());
}

async fn an_ended_session_goes_with_everything_of_it_and_only_once_old_enough(
    store: Arc<dyn Store>,
) {
    let alice = stored_user(&store, "alice").await;
    let web = stored_client(&store, client_with_logout("web")).await.id;
    let before = counts(&store).await;
    let mut sessions = Vec::new();
    for at in [T0, T0 + 10, T0 + 20] {
        let session = stored_session(&store, &alice, at).await;
        let code = redeemed_code(&store, &session, &web, at).await;
        store
            .admit_client_session(&session.sid, &alice.id, &web, at, unlimited())
            .await
            .unwrap();
        let (family, _) = stored_family(&store, &session, &web, Some(&code.code_hash), at).await;
        assert!(
            store
                .rotate_refresh(&rotation(&family, 0, at + 1))
                .await
                .unwrap()
                .rotated()
        );
        sessions.push(session);
    }
    let live = stored_session(&store, &alice, T0).await;
    // Two end early, one late; the live one never.
    for (session, at) in sessions.iter().zip([T0 + 100, T0 + 200, T0 + 9000]) {
        assert!(
            store
                .end_session(&session.sid, at, EndReason::Logout, None)
                .await
                .unwrap()
        );
    }
    // Their back-channel deliveries are done.
    for delivery in store
        .claim_backchannel_deliveries(T0 + 9001, 60, 10)
        .await
        .unwrap()
    {
        store
            .record_backchannel_attempt(delivery.id, T0 + 9001, &DeliveryOutcome::Delivered)
            .await
            .unwrap();
    }
    let full = counts(&store).await;

    // Ended before T0 + 1000: the first two, one per batch.
    assert_eq!(
        store
            .prune(Prunable::EndedSessions, T0 + 1000, 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .prune(Prunable::EndedSessions, T0 + 1000, 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .prune(Prunable::EndedSessions, T0 + 1000, 1)
            .await
            .unwrap(),
        0
    );

    let after = counts(&store).await;
    for (table, gone) in [
        ("sessions", 2),
        ("refresh_families", 2),
        ("refresh_tokens", 4),
        ("authorization_codes", 2),
        ("session_clients", 2),
        ("backchannel_deliveries", 2),
    ] {
        assert_eq!(full[table] - after[table], gone, "{table}");
    }
    assert!(
        store
            .find_session(&sessions[0].sid)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_session(&sessions[2].sid)
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.find_session(&live.sid).await.unwrap().is_some());
    // The feed and the audit log are not the session's: they go by their own cut-offs.
    assert_eq!(after["revocations"], full["revocations"]);
    assert_eq!(after["audit_events"], full["audit_events"]);
    // Ended later, and pruned later: the live session is all that is left of them.
    assert_eq!(
        store
            .prune(Prunable::EndedSessions, T0 + 10_000, 100)
            .await
            .unwrap(),
        1
    );
    let end = counts(&store).await;
    assert_eq!(end["sessions"], before["sessions"] + 1);
    assert_eq!(end["refresh_families"], before["refresh_families"]);
}

async fn codes_access_tokens_deliveries_and_audit_events_go_in_batches_past_their_cut_off(
    store: Arc<dyn Store>,
) {
    let alice = stored_user(&store, "alice").await;
    let web = stored_client(&store, client("web")).await.id;
    let session = stored_session(&store, &alice, T0).await;
    let mut codes = Vec::new();
    for at in [T0, T0 + 10, T0 + 500] {
        let code = code(&session, &web, at);
        store.insert_authorization_code(&code).await.unwrap();
        codes.push(code);
    }
    // Codes expire 60 s after they were issued: before T0 + 100, two of them.
    assert_eq!(
        store
            .prune(Prunable::AuthorizationCodes, T0 + 100, 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .prune(Prunable::AuthorizationCodes, T0 + 100, 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .prune(Prunable::AuthorizationCodes, T0 + 100, 10)
            .await
            .unwrap(),
        0
    );
    let consumed = store
        .consume_authorization_code(&codes[2].code_hash, &web, T0 + 501)
        .await
        .unwrap();
    assert!(matches!(
        consumed,
        ostiary_core::code::CodeConsumption::First(_)
    ));

    store
        .insert_revoked_access_token("at-1", T0 + 900, T0 + 5)
        .await
        .unwrap();
    store
        .insert_revoked_access_token("at-2", T0 + 300, T0 + 5)
        .await
        .unwrap();
    // Expired before T0 + 400: the revoked record of at-2, not at-1.
    assert_eq!(
        store
            .prune(Prunable::AccessTokens, T0 + 400, 10)
            .await
            .unwrap(),
        1
    );
    assert!(!store.is_access_token_revoked("at-2").await.unwrap());
    assert!(store.is_access_token_revoked("at-1").await.unwrap());

    for n in 0..5 {
        store
            .insert_audit_event(&AuditEvent::new(T0 + n, AuditKind::UserCreated, "admin"))
            .await
            .unwrap();
    }
    let events = counts(&store).await["audit_events"];
    // Before T0 + 3: the login of the session, and three of the five (two batches of two).
    assert_eq!(
        store.prune(Prunable::AuditEvents, T0 + 3, 2).await.unwrap(),
        2
    );
    assert_eq!(
        store.prune(Prunable::AuditEvents, T0 + 3, 2).await.unwrap(),
        2
    );
    assert_eq!(
        store.prune(Prunable::AuditEvents, T0 + 3, 2).await.unwrap(),
        0
    );
    assert_eq!(counts(&store).await["audit_events"], events - 4);

    // Back-channel deliveries: only those done before the cut-off.
    let other = stored_client(&store, client_with_logout("other")).await.id;
    for n in 0..2 {
        let s = stored_session(&store, &alice, T0).await;
        redeemed_code(&store, &s, &other, T0).await;
        store
            .end_session(&s.sid, T0 + n, EndReason::Logout, None)
            .await
            .unwrap();
    }
    let due = store
        .claim_backchannel_deliveries(T0 + 10, 60, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 2);
    store
        .record_backchannel_attempt(due[0].id, T0 + 10, &DeliveryOutcome::Delivered)
        .await
        .unwrap();
    assert_eq!(
        store
            .prune(Prunable::BackchannelDeliveries, T0 + 20, 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.list_undelivered_backchannel().await.unwrap().len(),
        1,
        "pending stays"
    );
}

async fn forgotten_login_counters_go_and_report_what_they_still_held(store: Arc<dyn Store>) {
    let policy = ThrottlePolicy {
        max_failures_per_user_and_ip: 1,
        ..ThrottlePolicy::default()
    };
    let throttle = LoginThrottle::new(policy);
    let keys = throttle.keys("alice", Some("10.0.0.1"));
    store.begin_login_attempt(&keys, T0, &policy).await.unwrap();
    // Refused, reported at once; refused again, held in the aggregate.
    let first = store.begin_login_attempt(&keys, T0, &policy).await.unwrap();
    assert_eq!(first.reports.len(), 1);
    let held = store.begin_login_attempt(&keys, T0, &policy).await.unwrap();
    assert!(held.reports.is_empty());
    let other = throttle.keys("bob", Some("10.0.0.2"));
    store
        .begin_login_attempt(&other, T0 + 500, &policy)
        .await
        .unwrap();

    // Last failure at or before T0 + 100: alice's three counters.
    let (forgotten, reports) = store.prune_login_counters(T0 + 100, 10).await.unwrap();
    assert_eq!(forgotten, 3);
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].key, "pair:alice|10.0.0.1");
    assert_eq!(reports[0].kind, CounterKind::UserAndAddress);
    assert_eq!(reports[0].attempts, 1);
    assert_eq!(counts(&store).await["login_counters"], 3, "bob's are left");
    let (batch, _) = store.prune_login_counters(T0 + 1000, 2).await.unwrap();
    assert_eq!(batch, 2);
}

async fn row_counts_name_every_table(store: Arc<dyn Store>) {
    let names: Vec<String> = store
        .row_counts()
        .await
        .unwrap()
        .into_iter()
        .map(|(table, _)| table)
        .collect();
    for table in [
        "users",
        "clients",
        "signing_keys",
        "sessions",
        "session_clients",
        "authorization_codes",
        "refresh_families",
        "refresh_tokens",
        "issued_access_tokens",
        "revoked_access_tokens",
        "revocations",
        "backchannel_deliveries",
        "audit_events",
        "login_counters",
        "job_leases",
    ] {
        assert!(names.iter().any(|n| n == table), "{table}");
    }
    stored_user(&store, "alice").await;
    assert_eq!(counts(&store).await["users"], 1);
}
