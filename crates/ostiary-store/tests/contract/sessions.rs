//! Sessions: storing under a session limit, a client's own session limit, endings (with the
//! feed, back-channel logout and audit entries that go with them), the active-session list.

use std::sync::Arc;

use ostiary_core::Store;
use ostiary_core::audit::{AuditEvent, AuditFilter, AuditKind};
use ostiary_core::client::ClientId;
use ostiary_core::session::EndReason;
use ostiary_core::store::{SessionAdmission, SessionLimit};

use crate::fixtures::*;

contract!(
    a_session_is_found_by_sid_and_by_cookie_and_its_login_is_audited,
    touching_a_session_only_moves_it_forward_and_not_once_it_ended,
    without_a_limit_every_session_is_admitted,
    at_the_limit_the_oldest_sessions_are_evicted_published_and_audited,
    at_the_limit_a_refusing_policy_stores_nothing,
    ended_idle_and_too_old_sessions_and_other_users_do_not_count_towards_the_limit,
    a_client_limit_counts_only_other_active_sessions_holding_its_tokens,
    a_client_limit_evicts_the_oldest_session_holding_its_tokens,
    ending_a_session_ends_its_families_publishes_queues_and_audits_once,
    a_cause_is_appended_first_even_when_the_session_had_already_ended,
    ending_every_session_of_a_user_leaves_other_users_alone,
    active_sessions_are_listed_newest_first_with_the_clients_holding_tokens,
);

async fn a_session_is_found_by_sid_and_by_cookie_and_its_login_is_audited(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;
    let session = session(&alice, T0);
    let login = login_event(&session);

    let admission = store
        .insert_session(&session, unlimited(), &login)
        .await
        .unwrap();

    assert_eq!(admission, SessionAdmission::Admitted { evicted: vec![] });
    let by_sid = get_session(&store, &session.sid).await;
    let cookie = session.cookie_hash.as_ref().unwrap();
    let by_cookie = store.find_session_by_cookie(cookie).await.unwrap().unwrap();
    assert_eq!(session_view(&by_sid), session_view(&session));
    assert_eq!(session_view(&by_cookie), session_view(&session));
    let logins = events(&store, AuditKind::LoginSucceeded).await;
    assert_eq!(logins.len(), 1);
    assert_eq!(
        AuditEvent {
            id: 0,
            ..logins[0].clone()
        },
        login
    );
    assert!(store.find_session("nope").await.unwrap().is_none());
    let other = ostiary_core::secret::Credential::generate().hash();
    assert!(
        store
            .find_session_by_cookie(&other)
            .await
            .unwrap()
            .is_none()
    );
}

async fn touching_a_session_only_moves_it_forward_and_not_once_it_ended(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;
    let session = stored_session(&store, &alice, T0).await;

    store.touch_session(&session.sid, T0 + 50).await.unwrap();
    store.touch_session(&session.sid, T0 + 20).await.unwrap();
    assert_eq!(
        get_session(&store, &session.sid).await.last_used_at,
        T0 + 50
    );

    store
        .end_session(&session.sid, T0 + 60, EndReason::Logout, None)
        .await
        .unwrap();
    store.touch_session(&session.sid, T0 + 70).await.unwrap();
    assert_eq!(
        get_session(&store, &session.sid).await.last_used_at,
        T0 + 50
    );
    store.touch_session("no-such-sid", T0).await.unwrap();
}

async fn without_a_limit_every_session_is_admitted(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;

    for i in 0..5 {
        let s = session(&alice, T0 + i);
        let admission = store
            .insert_session(&s, limit(0, false), &login_event(&s))
            .await
            .unwrap();
        assert_eq!(admission, SessionAdmission::Admitted { evicted: vec![] });
    }

    assert_eq!(
        store
            .list_active_sessions(Some(&alice.id))
            .await
            .unwrap()
            .len(),
        5
    );
}

async fn at_the_limit_the_oldest_sessions_are_evicted_published_and_audited(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;
    let s1 = stored_session(&store, &alice, T0).await;
    let s2 = stored_session(&store, &alice, T0 + 1).await;
    let s3 = stored_session(&store, &alice, T0 + 2).await;
    let new = session(&alice, T0 + 10);

    let admission = store
        .insert_session(&new, limit(2, true), &login_event(&new))
        .await
        .unwrap();

    // Two may be active: the newest existing one stays, beside the new one.
    assert_eq!(
        admission,
        SessionAdmission::Admitted {
            evicted: vec![s2.sid.clone(), s1.sid.clone()]
        }
    );
    for evicted in [&s1, &s2] {
        let ended = get_session(&store, &evicted.sid).await;
        assert_eq!(ended.ended_at, Some(T0 + 10));
        assert_eq!(ended.end_reason.as_deref(), Some("policy_eviction"));
    }
    assert_eq!(get_session(&store, &s3.sid).await.ended_at, None);
    assert_eq!(get_session(&store, &new.sid).await.ended_at, None);

    let feed = feed(&store).await;
    let published: Vec<(Option<String>, &str, i64)> = feed
        .iter()
        .map(|e| (e.sid.clone(), e.reason.as_str(), e.revoked_at))
        .collect();
    assert_eq!(
        published,
        [
            (Some(s2.sid.clone()), "policy_eviction", T0 + 10),
            (Some(s1.sid.clone()), "policy_eviction", T0 + 10)
        ]
    );

    for evicted in [&s1, &s2] {
        let audited = store
            .list_audit_events(&AuditFilter {
                sid: Some(evicted.sid.clone()),
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        // The login, then the eviction's two events (in the one transaction; their relative
        // order differs between the trait's doc and SQLite, so it is not pinned here).
        assert_eq!(audited.len(), 3, "{audited:?}");
        assert_eq!(audited[0].kind, AuditKind::LoginSucceeded);
        let evicted_event = audited
            .iter()
            .find(|e| e.kind == AuditKind::SessionEvicted)
            .expect("session_evicted");
        let ended_event = audited
            .iter()
            .find(|e| e.kind == AuditKind::SessionEnded)
            .expect("session_ended");
        assert_eq!(evicted_event.actor, "system");
        assert_eq!(evicted_event.at, T0 + 10);
        assert_eq!(evicted_event.user_id.as_deref(), Some(alice.id.as_str()));
        assert_eq!(
            evicted_event.details,
            serde_json::json!({"max_sessions_per_user": 2, "evicted_by": new.sid})
        );
        assert_eq!(
            ended_event.details,
            serde_json::json!({"reason": "policy_eviction"})
        );
        assert_eq!(ended_event.actor, "system");
    }
    assert_eq!(events(&store, AuditKind::LoginSucceeded).await.len(), 4);
}

async fn at_the_limit_a_refusing_policy_stores_nothing(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;
    let s1 = stored_session(&store, &alice, T0).await;
    let s2 = stored_session(&store, &alice, T0 + 1).await;
    let new = session(&alice, T0 + 10);

    let admission = store
        .insert_session(&new, limit(2, false), &login_event(&new))
        .await
        .unwrap();

    assert_eq!(admission, SessionAdmission::Refused);
    assert!(store.find_session(&new.sid).await.unwrap().is_none());
    for s in [&s1, &s2] {
        assert_eq!(get_session(&store, &s.sid).await.ended_at, None);
    }
    assert!(feed(&store).await.is_empty());
    assert_eq!(events(&store, AuditKind::LoginSucceeded).await.len(), 2);
    assert!(events(&store, AuditKind::SessionEnded).await.is_empty());
}

async fn ended_idle_and_too_old_sessions_and_other_users_do_not_count_towards_the_limit(
    store: Arc<dyn Store>,
) {
    let alice = stored_user(&store, "alice").await;
    let bob = stored_user(&store, "bob").await;
    // Too old: created at or before absolute_since.
    let old = stored_session(&store, &alice, T0).await;
    // Idle: last used at or before idle_since.
    let idle = stored_session(&store, &alice, T0 + 100).await;
    let ended = stored_session(&store, &alice, T0 + 200).await;
    store
        .end_session(&ended.sid, T0 + 201, EndReason::Logout, None)
        .await
        .unwrap();
    stored_session(&store, &bob, T0 + 300).await;
    let limit = SessionLimit {
        max: 1,
        evict_oldest: false,
        idle_since: T0 + 100,
        absolute_since: T0,
    };
    store.touch_session(&old.sid, T0 + 400).await.unwrap();
    let new = session(&alice, T0 + 500);

    let admission = store
        .insert_session(&new, limit, &login_event(&new))
        .await
        .unwrap();

    assert_eq!(admission, SessionAdmission::Admitted { evicted: vec![] });
    // Just past the bounds, they count.
    let counted = SessionLimit {
        idle_since: T0 + 99,
        ..limit
    };
    let another = session(&alice, T0 + 600);
    store
        .end_session(&new.sid, T0 + 550, EndReason::Logout, None)
        .await
        .unwrap();
    let refused = store
        .insert_session(&another, counted, &login_event(&another))
        .await
        .unwrap();
    assert_eq!(
        refused,
        SessionAdmission::Refused,
        "the idle one counts now"
    );
    assert_eq!(get_session(&store, &idle.sid).await.ended_at, None);
}

async fn a_client_limit_counts_only_other_active_sessions_holding_its_tokens(
    store: Arc<dyn Store>,
) {
    let alice = stored_user(&store, "alice").await;
    let bob = stored_user(&store, "bob").await;
    let a = stored_client(&store, client("app-a")).await.id;
    let b = stored_client(&store, client("app-b")).await.id;
    let s1 = stored_session(&store, &alice, T0).await;
    let s2 = stored_session(&store, &alice, T0 + 1).await;
    let s3 = stored_session(&store, &alice, T0 + 2).await;
    let s4 = stored_session(&store, &alice, T0 + 3).await;
    let bobs = stored_session(&store, &bob, T0).await;
    let admit = |sid: String, user: String, client: ClientId, max: u32, evict: bool| {
        let store = Arc::clone(&store);
        async move {
            store
                .admit_client_session(&sid, &user, &client, T0 + 10, limit(max, evict))
                .await
                .unwrap()
        }
    };
    let admitted = SessionAdmission::Admitted { evicted: vec![] };
    assert_eq!(
        admit(s1.sid.clone(), alice.id.clone(), a.clone(), 0, false).await,
        admitted
    );
    assert_eq!(
        admit(s2.sid.clone(), alice.id.clone(), b.clone(), 0, false).await,
        admitted
    );
    assert_eq!(
        admit(bobs.sid.clone(), bob.id.clone(), a.clone(), 0, false).await,
        admitted
    );

    // s1 holds tokens of a: one is the limit.
    let refused = admit(s3.sid.clone(), alice.id.clone(), a.clone(), 1, false).await;
    // Only s2 holds tokens of b.
    let b_in_s3 = admit(s3.sid.clone(), alice.id.clone(), b.clone(), 2, false).await;
    // Known already: admitted again without counting.
    let again = admit(s1.sid.clone(), alice.id.clone(), a.clone(), 1, false).await;

    assert_eq!(refused, SessionAdmission::Refused);
    assert_eq!(b_in_s3, admitted);
    assert_eq!(again, admitted);
    // The refusal recorded nothing: s3 does not count for a.
    assert_eq!(
        admit(s4.sid.clone(), alice.id.clone(), a.clone(), 2, false).await,
        admitted
    );
    // An ended session does not count.
    store
        .end_session(&s1.sid, T0 + 20, EndReason::Logout, None)
        .await
        .unwrap();
    store
        .end_session(&s4.sid, T0 + 20, EndReason::Logout, None)
        .await
        .unwrap();
    assert_eq!(
        admit(s3.sid.clone(), alice.id.clone(), a.clone(), 1, false).await,
        admitted
    );
    assert_eq!(
        feed(&store).await.len(),
        2,
        "refusals and admissions publish nothing"
    );
}

async fn a_client_limit_evicts_the_oldest_session_holding_its_tokens(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;
    let a = stored_client(&store, client_with_logout("app-a")).await.id;
    let s1 = stored_session(&store, &alice, T0).await;
    let s2 = stored_session(&store, &alice, T0 + 1).await;
    let s3 = stored_session(&store, &alice, T0 + 2).await;
    for s in [&s1, &s2] {
        redeemed_code(&store, s, &a, T0 + 3).await;
        store
            .admit_client_session(&s.sid, &alice.id, &a, T0 + 3, unlimited())
            .await
            .unwrap();
    }

    let admission = store
        .admit_client_session(&s3.sid, &alice.id, &a, T0 + 10, limit(2, true))
        .await
        .unwrap();

    assert_eq!(
        admission,
        SessionAdmission::Admitted {
            evicted: vec![s1.sid.clone()]
        }
    );
    let ended = get_session(&store, &s1.sid).await;
    assert_eq!(ended.end_reason.as_deref(), Some("policy_eviction"));
    assert_eq!(ended.ended_at, Some(T0 + 10));
    assert_eq!(get_session(&store, &s2.sid).await.ended_at, None);
    let feed = feed(&store).await;
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0].sid.as_deref(), Some(s1.sid.as_str()));
    let evicted = events(&store, AuditKind::SessionEvicted).await;
    assert_eq!(evicted.len(), 1);
    assert_eq!(evicted[0].sid.as_deref(), Some(s1.sid.as_str()));
    assert_eq!(
        evicted[0].details,
        serde_json::json!({"client_id": "app-a", "max_sessions_per_user": 2, "evicted_by": s3.sid})
    );
    let ended_events = events(&store, AuditKind::SessionEnded).await;
    assert_eq!(ended_events.len(), 1);
    // The eviction is an ending like any other: its back-channel logout is queued.
    let owed = store.list_undelivered_backchannel().await.unwrap();
    assert_eq!(owed.len(), 1);
    assert_eq!(owed[0].sid, s1.sid);
    // s3 now holds tokens of a: with s2, that is two.
    let s4 = stored_session(&store, &alice, T0 + 20).await;
    let refused = store
        .admit_client_session(&s4.sid, &alice.id, &a, T0 + 20, limit(2, false))
        .await
        .unwrap();
    assert_eq!(refused, SessionAdmission::Refused);
}

async fn ending_a_session_ends_its_families_publishes_queues_and_audits_once(
    store: Arc<dyn Store>,
) {
    let alice = stored_user(&store, "alice").await;
    // Has a logout endpoint and redeemed a code: owed a back-channel logout.
    let web = stored_client(&store, client_with_logout("web")).await.id;
    // Has a logout endpoint, but its code was never redeemed.
    let spa = stored_client(&store, client_with_logout("spa")).await.id;
    // Redeemed a code, but has no logout endpoint.
    let api = stored_client(&store, client("api")).await.id;
    let session = stored_session(&store, &alice, T0).await;
    let other = stored_session(&store, &alice, T0 + 1).await;
    let web_code = redeemed_code(&store, &session, &web, T0 + 1).await;
    let api_code = redeemed_code(&store, &session, &api, T0 + 1).await;
    store
        .insert_authorization_code(&code(&session, &spa, T0 + 1))
        .await
        .unwrap();
    redeemed_code(&store, &other, &spa, T0 + 1).await;
    let (web_family, _) =
        stored_family(&store, &session, &web, Some(&web_code.code_hash), T0 + 1).await;
    let (api_family, _) =
        stored_family(&store, &session, &api, Some(&api_code.code_hash), T0 + 1).await;
    let (other_family, _) = stored_family(&store, &other, &web, None, T0 + 1).await;

    let ended = store
        .end_session(&session.sid, T0 + 10, EndReason::Logout, None)
        .await
        .unwrap();

    assert!(ended);
    let stored = get_session(&store, &session.sid).await;
    assert_eq!(stored.ended_at, Some(T0 + 10));
    assert_eq!(stored.end_reason.as_deref(), Some("logout"));
    for family in [&web_family, &api_family] {
        let family = get_family(&store, &family.id).await;
        assert_eq!(family.ended_at, Some(T0 + 10));
        assert_eq!(family.end_reason.as_deref(), Some("logout"));
    }
    assert_eq!(get_family(&store, &other_family.id).await.ended_at, None);
    assert_eq!(get_session(&store, &other.sid).await.ended_at, None);

    let published = feed(&store).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].sid.as_deref(), Some(session.sid.as_str()));
    assert_eq!(published[0].jti, None);
    assert_eq!(published[0].revoked_at, T0 + 10);
    assert_eq!(published[0].reason, "logout");

    let ended_events = events(&store, AuditKind::SessionEnded).await;
    assert_eq!(ended_events.len(), 1);
    assert_eq!(
        AuditEvent {
            id: 0,
            ..ended_events[0].clone()
        },
        AuditEvent::session_ended(T0 + 10, &session.sid, &alice.id, EndReason::Logout)
    );
    assert_eq!(ended_events[0].actor, "user");

    let owed = store.list_undelivered_backchannel().await.unwrap();
    assert_eq!(owed.len(), 1, "{owed:?}");
    assert_eq!(owed[0].client_id, "web");
    assert_eq!(owed[0].sid, session.sid);
    assert_eq!(owed[0].uri, logout_uri("web").as_str());
    assert_eq!(owed[0].attempts, 0);
    assert_eq!(owed[0].next_attempt_at, T0 + 10);
    assert_eq!(
        (
            owed[0].delivered_at,
            owed[0].failed_at,
            owed[0].last_error.clone()
        ),
        (None, None, None)
    );

    // Ending it again changes nothing and publishes nothing.
    let again = store
        .end_session(&session.sid, T0 + 20, EndReason::AdminRevoked, None)
        .await
        .unwrap();
    assert!(!again);
    let stored = get_session(&store, &session.sid).await;
    assert_eq!(stored.ended_at, Some(T0 + 10));
    assert_eq!(
        stored.end_reason.as_deref(),
        Some("logout"),
        "the first reason is kept"
    );
    assert_eq!(feed(&store).await.len(), 1);
    assert_eq!(events(&store, AuditKind::SessionEnded).await.len(), 1);
    assert_eq!(store.list_undelivered_backchannel().await.unwrap().len(), 1);
    assert!(
        !store
            .end_session("no-such-sid", T0 + 20, EndReason::Logout, None)
            .await
            .unwrap()
    );
    assert_eq!(feed(&store).await.len(), 1);
}

async fn a_cause_is_appended_first_even_when_the_session_had_already_ended(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;
    let session = stored_session(&store, &alice, T0).await;
    let cause = |at| {
        AuditEvent::new(at, AuditKind::RefreshTokenReuseDetected, "system")
            .user(&alice.id)
            .session(&session.sid)
            .client("web")
            .origin(Some("203.0.113.9"), Some("thief/1.0"))
            .details(serde_json::json!({"presented_generation": 0, "current_generation": 2}))
    };

    let first = store
        .end_session(
            &session.sid,
            T0 + 10,
            EndReason::RefreshTokenReuse,
            Some(&cause(T0 + 10)),
        )
        .await
        .unwrap();
    let second = store
        .end_session(
            &session.sid,
            T0 + 20,
            EndReason::RefreshTokenReuse,
            Some(&cause(T0 + 20)),
        )
        .await
        .unwrap();

    assert!(first);
    assert!(!second);
    let audited = store
        .list_audit_events(&AuditFilter {
            sid: Some(session.sid.clone()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let kinds: Vec<(AuditKind, i64)> = audited.iter().map(|e| (e.kind, e.at)).collect();
    assert_eq!(
        kinds,
        [
            (AuditKind::LoginSucceeded, T0),
            (AuditKind::RefreshTokenReuseDetected, T0 + 10),
            (AuditKind::SessionEnded, T0 + 10),
            (AuditKind::RefreshTokenReuseDetected, T0 + 20),
        ]
    );
    assert_eq!(
        AuditEvent {
            id: 0,
            ..audited[1].clone()
        },
        cause(T0 + 10)
    );
    assert_eq!(audited[2].actor, "system");
    assert_eq!(feed(&store).await.len(), 1);
}

async fn ending_every_session_of_a_user_leaves_other_users_alone(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;
    let bob = stored_user(&store, "bob").await;
    let s1 = stored_session(&store, &alice, T0).await;
    let s2 = stored_session(&store, &alice, T0 + 1).await;
    let done = stored_session(&store, &alice, T0 + 2).await;
    let bobs = stored_session(&store, &bob, T0).await;
    let web = stored_client(&store, client("web")).await.id;
    let (family, _) = stored_family(&store, &s2, &web, None, T0 + 3).await;
    store
        .end_session(&done.sid, T0 + 5, EndReason::Logout, None)
        .await
        .unwrap();

    let mut ended = store
        .end_sessions_of_user(&alice.id, T0 + 10, EndReason::PasswordChanged)
        .await
        .unwrap();

    ended.sort();
    let mut expected = vec![s1.sid.clone(), s2.sid.clone()];
    expected.sort();
    assert_eq!(ended, expected);
    for s in [&s1, &s2] {
        let s = get_session(&store, &s.sid).await;
        assert_eq!(s.ended_at, Some(T0 + 10));
        assert_eq!(s.end_reason.as_deref(), Some("password_changed"));
    }
    assert_eq!(
        get_session(&store, &done.sid).await.end_reason.as_deref(),
        Some("logout")
    );
    assert_eq!(get_session(&store, &bobs.sid).await.ended_at, None);
    assert_eq!(
        get_family(&store, &family.id).await.end_reason.as_deref(),
        Some("password_changed")
    );
    let mut published: Vec<String> = feed(&store)
        .await
        .iter()
        .filter(|e| e.reason == "password_changed")
        .filter_map(|e| e.sid.clone())
        .collect();
    published.sort();
    assert_eq!(published, expected);
    let ended_events = events(&store, AuditKind::SessionEnded).await;
    assert_eq!(ended_events.len(), 3);
    assert!(
        ended_events[1..]
            .iter()
            .all(|e| e.actor == "admin" && e.details["reason"] == "password_changed")
    );

    let again = store
        .end_sessions_of_user(&alice.id, T0 + 20, EndReason::UserDisabled)
        .await
        .unwrap();
    assert!(again.is_empty());
    assert_eq!(feed(&store).await.len(), 3);
    assert!(
        store
            .end_sessions_of_user("nobody", T0, EndReason::UserDisabled)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn active_sessions_are_listed_newest_first_with_the_clients_holding_tokens(
    store: Arc<dyn Store>,
) {
    let alice = stored_user(&store, "alice").await;
    let bob = stored_user(&store, "bob").await;
    let web = stored_client(&store, client("web")).await.id;
    let spa = stored_client(&store, client("spa")).await.id;
    let api = stored_client(&store, client("api")).await.id;
    let s1 = stored_session(&store, &alice, T0).await;
    let s2 = stored_session(&store, &alice, T0 + 1).await;
    let done = stored_session(&store, &alice, T0 + 2).await;
    let bobs = stored_session(&store, &bob, T0 + 3).await;
    stored_family(&store, &s2, &web, None, T0 + 4).await;
    stored_family(&store, &s2, &web, None, T0 + 4).await;
    stored_family(&store, &s2, &spa, None, T0 + 4).await;
    let (ended_family, _) = stored_family(&store, &s2, &api, None, T0 + 4).await;
    store
        .end_refresh_family(&ended_family.id, T0 + 5, EndReason::IdleTimeout)
        .await
        .unwrap();
    store
        .end_session(&done.sid, T0 + 5, EndReason::Logout, None)
        .await
        .unwrap();

    let alices = store.list_active_sessions(Some(&alice.id)).await.unwrap();
    let everyone = store.list_active_sessions(None).await.unwrap();

    let listed = |sessions: &[(ostiary_core::session::Session, Vec<String>)]| {
        sessions
            .iter()
            .map(|(s, clients)| {
                let mut clients = clients.clone();
                clients.sort();
                (s.sid.clone(), clients)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        listed(&alices),
        [
            (s2.sid.clone(), vec!["spa".to_owned(), "web".to_owned()]),
            (s1.sid.clone(), vec![]),
        ]
    );
    assert_eq!(session_view(&alices[0].0), session_view(&s2));
    assert_eq!(
        listed(&everyone),
        [
            (bobs.sid.clone(), vec![]),
            (s2.sid.clone(), vec!["spa".to_owned(), "web".to_owned()]),
            (s1.sid.clone(), vec![]),
        ]
    );
    assert!(
        store
            .list_active_sessions(Some("nobody"))
            .await
            .unwrap()
            .is_empty()
    );
}
