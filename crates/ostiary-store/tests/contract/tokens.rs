//! Authorization codes, refresh families and their rotation, revoked access tokens.

use std::sync::Arc;

use ostiary_core::Store;
use ostiary_core::audit::{AuditEvent, AuditKind};
use ostiary_core::code::CodeConsumption;
use ostiary_core::refresh::RefreshFamily;
use ostiary_core::secret::Credential;
use ostiary_core::session::EndReason;
use ostiary_core::store::{DpopProofRecord, Rotation, RotationOutcome, SessionAdmission};

use crate::fixtures::*;

contract!(
    an_authorization_code_is_consumed_once_then_reported_as_replayed,
    a_refresh_family_is_found_by_each_of_its_tokens,
    a_refresh_grant_reads_the_family_session_and_user_of_a_token,
    a_rotation_applies_only_at_the_expected_generation_of_a_live_family,
    a_rotation_never_moves_the_session_back_in_time,
    a_reissued_mark_applies_only_at_its_generation_and_moves_with_the_rotation,
    ending_a_refresh_family_leaves_the_session_and_other_families_alone,
    a_client_with_another_live_family_in_the_session_still_counts,
    a_code_is_found_used_or_not,
    a_revoked_access_token_is_recorded_and_published_once,
    a_dpop_proof_is_accepted_once_within_its_window,
    a_rotation_keeps_the_dpop_binding_the_family_was_created_with,
    a_rotation_records_its_dpop_proof_and_applies_only_with_its_first_use,
);

async fn an_authorization_code_is_consumed_once_then_reported_as_replayed(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;
    let web = stored_client(&store, client("web")).await.id;
    let session = stored_session(&store, &alice, T0).await;
    let code = code(&session, &web, T0);
    let without_nonce = ostiary_core::code::AuthorizationCode {
        nonce: None,
        code_hash: Credential::generate().hash(),
        ..code.clone()
    };
    store.insert_authorization_code(&code).await.unwrap();
    store
        .insert_authorization_code(&without_nonce)
        .await
        .unwrap();

    let spa = stored_client(&store, client("spa")).await.id;
    let by_other_client = store
        .consume_authorization_code(&code.code_hash, &spa, T0 + 4)
        .await
        .unwrap();
    let first = store
        .consume_authorization_code(&code.code_hash, &web, T0 + 5)
        .await
        .unwrap();
    let replayed = store
        .consume_authorization_code(&code.code_hash, &web, T0 + 6)
        .await
        .unwrap();
    let replayed_by_other_client = store
        .consume_authorization_code(&code.code_hash, &spa, T0 + 6)
        .await
        .unwrap();
    let unknown = store
        .consume_authorization_code(&Credential::generate().hash(), &web, T0 + 6)
        .await
        .unwrap();
    let other = store
        .consume_authorization_code(&without_nonce.code_hash, &web, T0 + 7)
        .await
        .unwrap();

    // Another client's attempt changed nothing: the holder's first use came after it.
    let CodeConsumption::OtherClient(seen) = by_other_client else {
        panic!("expected OtherClient, got {by_other_client:?}");
    };
    assert_eq!(code_view(&seen), code_view(&code));
    assert!(
        matches!(replayed_by_other_client, CodeConsumption::OtherClient(_)),
        "{replayed_by_other_client:?}"
    );
    let CodeConsumption::First(first) = first else {
        panic!("expected First, got {first:?}");
    };
    assert_eq!(code_view(&first), code_view(&code));
    let CodeConsumption::Replayed(replayed) = replayed else {
        panic!("expected Replayed, got {replayed:?}");
    };
    assert_eq!(code_view(&replayed), code_view(&code));
    assert!(matches!(unknown, CodeConsumption::Unknown), "{unknown:?}");
    let CodeConsumption::First(other) = other else {
        panic!("expected First, got {other:?}");
    };
    assert_eq!(code_view(&other), code_view(&without_nonce));
}

async fn a_refresh_family_is_found_by_each_of_its_tokens(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;
    let web = stored_client(&store, client("web")).await.id;
    let session = stored_session(&store, &alice, T0).await;
    let code = redeemed_code(&store, &session, &web, T0).await;
    let (family, first) = stored_family(&store, &session, &web, Some(&code.code_hash), T0).await;

    let (found, generation) = store.find_refresh_token(&first).await.unwrap().unwrap();
    assert_eq!(family_view(&found), family_view(&family));
    assert_eq!(generation, 0);
    assert_eq!(
        family_view(&get_family(&store, &family.id).await),
        family_view(&family)
    );

    let rotation = rotation(&family, 0, T0 + 10);
    assert!(store.rotate_refresh(&rotation).await.unwrap().rotated());

    let (by_first, first_generation) = store.find_refresh_token(&first).await.unwrap().unwrap();
    let (by_second, second_generation) = store
        .find_refresh_token(&rotation.new_token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first_generation, 0,
        "an old token is remembered, for reuse detection"
    );
    assert_eq!(second_generation, 1);
    assert_eq!(by_first.generation, 1, "with the family as it is now");
    assert_eq!(family_view(&by_first), family_view(&by_second));
    let unknown = Credential::generate().hash();
    assert!(store.find_refresh_token(&unknown).await.unwrap().is_none());
    assert!(store.find_refresh_family("nope").await.unwrap().is_none());
}

async fn a_refresh_grant_reads_the_family_session_and_user_of_a_token(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;
    let web = stored_client(&store, client("web")).await.id;
    let session = stored_session(&store, &alice, T0).await;
    let (family, first) = stored_family(&store, &session, &web, None, T0).await;
    let rotation = rotation(&family, 0, T0 + 10);
    assert!(store.rotate_refresh(&rotation).await.unwrap().rotated());

    for (token, generation) in [(&first, 0), (&rotation.new_token_hash, 1)] {
        let grant = store.find_refresh_grant(token).await.unwrap().unwrap();
        assert_eq!(grant.generation, generation);
        assert_eq!(
            family_view(&grant.family),
            family_view(&get_family(&store, &family.id).await)
        );
        assert_eq!(
            session_view(&grant.session),
            session_view(&get_session(&store, &session.sid).await)
        );
        assert_eq!(
            grant.session.last_used_at,
            T0 + 10,
            "touched by the rotation"
        );
        assert_eq!(user_view(&grant.user), user_view(&alice));
    }

    store
        .end_session(&session.sid, T0 + 20, EndReason::Logout, None)
        .await
        .unwrap();
    let ended = store.find_refresh_grant(&first).await.unwrap().unwrap();
    assert_eq!(ended.session.ended_at, Some(T0 + 20));
    assert_eq!(ended.family.ended_at, Some(T0 + 20));
    let unknown = Credential::generate().hash();
    assert!(store.find_refresh_grant(&unknown).await.unwrap().is_none());
}

async fn a_rotation_applies_only_at_the_expected_generation_of_a_live_family(
    store: Arc<dyn Store>,
) {
    let alice = stored_user(&store, "alice").await;
    let web = stored_client(&store, client("web")).await.id;
    let session = stored_session(&store, &alice, T0).await;
    let (family, _) = stored_family(&store, &session, &web, None, T0).await;
    let first = rotation(&family, 0, T0 + 10);

    let won = store.rotate_refresh(&first).await.unwrap().rotated();
    let stale = rotation(&family, 0, T0 + 11);
    let lost = store.rotate_refresh(&stale).await.unwrap().rotated();

    assert!(won);
    assert!(!lost);
    let rotated = get_family(&store, &family.id).await;
    assert_eq!(rotated.generation, 1);
    assert_eq!(rotated.rotated_at, T0 + 10);
    assert_eq!(
        rotated.sealed_successor,
        Some(first.sealed_successor.clone())
    );
    assert_eq!(rotated.last_use_ip.as_deref(), Some("198.51.100.7"));
    assert_eq!(
        rotated.last_use_user_agent.as_deref(),
        Some("curl/8 (rotation)")
    );
    assert_eq!(
        get_session(&store, &session.sid).await.last_used_at,
        T0 + 10
    );
    assert!(
        store
            .find_refresh_token(&stale.new_token_hash)
            .await
            .unwrap()
            .is_none(),
        "the losing rotation stored nothing"
    );
    let rotated_events = events(&store, AuditKind::RefreshRotated).await;
    assert_eq!(rotated_events.len(), 1);
    assert_eq!(
        AuditEvent {
            id: 0,
            ..rotated_events[0].clone()
        },
        first.audit
    );

    assert!(
        store
            .rotate_refresh(&rotation(&family, 1, T0 + 20))
            .await
            .unwrap()
            .rotated()
    );
    assert_eq!(get_family(&store, &family.id).await.generation, 2);

    store
        .end_session(&session.sid, T0 + 30, EndReason::Logout, None)
        .await
        .unwrap();
    let after_end = rotation(&family, 2, T0 + 40);
    assert!(
        !store.rotate_refresh(&after_end).await.unwrap().rotated(),
        "an ended family never rotates"
    );
    assert_eq!(get_family(&store, &family.id).await.generation, 2);
    assert_eq!(
        get_session(&store, &session.sid).await.last_used_at,
        T0 + 20
    );
    assert!(
        !store
            .rotate_refresh(&rotation(&family_of("nope", &family), 0, T0))
            .await
            .unwrap()
            .rotated()
    );
}

async fn a_reissued_mark_applies_only_at_its_generation_and_moves_with_the_rotation(
    store: Arc<dyn Store>,
) {
    let alice = stored_user(&store, "alice").await;
    let web = stored_client(&store, client("web")).await.id;
    let session = stored_session(&store, &alice, T0).await;
    let (family, _) = stored_family(&store, &session, &web, None, T0).await;
    let fresh = get_family(&store, &family.id).await;
    assert!(!fresh.current_reissued && !fresh.previous_reissued);
    let recovered = AuditEvent::new(T0 + 5, AuditKind::RefreshRecovered, "client:web")
        .user(&alice.id)
        .session(&session.sid)
        .details(serde_json::json!({"generation": 0}));
    assert!(
        store
            .rotate_refresh(&rotation(&family, 0, T0 + 1))
            .await
            .unwrap()
            .rotated()
    );

    // Not at a generation the family is not at (it moved on, or never got there).
    assert!(
        !store
            .reissue_successor(&family.id, 0, &recovered)
            .await
            .unwrap()
    );
    assert!(
        !store
            .reissue_successor(&family.id, 2, &recovered)
            .await
            .unwrap()
    );
    assert!(
        !store
            .reissue_successor("nope", 1, &recovered)
            .await
            .unwrap()
    );
    assert!(
        events(&store, AuditKind::RefreshRecovered).await.is_empty(),
        "nothing appended"
    );
    // At its generation: marked, with its event.
    assert!(
        store
            .reissue_successor(&family.id, 1, &recovered)
            .await
            .unwrap()
    );
    let marked = get_family(&store, &family.id).await;
    assert!(marked.current_reissued && !marked.previous_reissued);
    assert_eq!(marked.generation, 1, "a reissue rotates nothing");
    let appended = events(&store, AuditKind::RefreshRecovered).await;
    assert_eq!(appended.len(), 1);
    assert_eq!(
        AuditEvent {
            id: 0,
            ..appended[0].clone()
        },
        recovered
    );

    // The mark moves with the rotation to the previous token, then out.
    assert!(
        store
            .rotate_refresh(&rotation(&family, 1, T0 + 10))
            .await
            .unwrap()
            .rotated()
    );
    let moved = get_family(&store, &family.id).await;
    assert!(!moved.current_reissued && moved.previous_reissued);
    assert!(
        store
            .rotate_refresh(&rotation(&family, 2, T0 + 20))
            .await
            .unwrap()
            .rotated()
    );
    let gone = get_family(&store, &family.id).await;
    assert!(!gone.current_reissued && !gone.previous_reissued);

    // An ended family is never marked.
    store
        .end_session(&session.sid, T0 + 30, EndReason::Logout, None)
        .await
        .unwrap();
    assert!(
        !store
            .reissue_successor(&family.id, 3, &recovered)
            .await
            .unwrap()
    );
}

/// `family` under another id (for a rotation of a family that does not exist).
fn family_of(
    id: &str,
    family: &ostiary_core::refresh::RefreshFamily,
) -> ostiary_core::refresh::RefreshFamily {
    ostiary_core::refresh::RefreshFamily {
        id: id.to_owned(),
        ..family.clone()
    }
}

async fn a_rotation_never_moves_the_session_back_in_time(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;
    let web = stored_client(&store, client("web")).await.id;
    let session = stored_session(&store, &alice, T0).await;
    let (family, _) = stored_family(&store, &session, &web, None, T0).await;
    store.touch_session(&session.sid, T0 + 100).await.unwrap();

    assert!(
        store
            .rotate_refresh(&rotation(&family, 0, T0 + 50))
            .await
            .unwrap()
            .rotated()
    );

    assert_eq!(
        get_session(&store, &session.sid).await.last_used_at,
        T0 + 100
    );
}

async fn ending_a_refresh_family_leaves_the_session_and_other_families_alone(
    store: Arc<dyn Store>,
) {
    let alice = stored_user(&store, "alice").await;
    let web = stored_client(&store, client("web")).await.id;
    let spa = stored_client(&store, client("spa")).await.id;
    let s1 = stored_session(&store, &alice, T0).await;
    let s2 = stored_session(&store, &alice, T0 + 1).await;
    let (web_family, _) = stored_family(&store, &s1, &web, None, T0 + 2).await;
    let (spa_family, _) = stored_family(&store, &s1, &spa, None, T0 + 2).await;
    for client in [&web, &spa] {
        store
            .admit_client_session(&s1.sid, &alice.id, client, T0 + 2, unlimited())
            .await
            .unwrap();
    }

    let ended = store
        .end_refresh_family(&web_family.id, T0 + 10, EndReason::IdleTimeout)
        .await
        .unwrap();
    let again = store
        .end_refresh_family(&web_family.id, T0 + 20, EndReason::AbsoluteLifetime)
        .await
        .unwrap();

    assert!(ended);
    assert!(!again);
    let family = get_family(&store, &web_family.id).await;
    assert_eq!(family.ended_at, Some(T0 + 10));
    assert_eq!(family.end_reason.as_deref(), Some("idle_timeout"));
    assert_eq!(get_family(&store, &spa_family.id).await.ended_at, None);
    assert_eq!(get_session(&store, &s1.sid).await.ended_at, None);
    assert!(feed(&store).await.is_empty(), "nothing is published");
    assert!(events(&store, AuditKind::SessionEnded).await.is_empty());
    // web no longer holds tokens in s1, so it does not count towards web's limit; spa does.
    let web_in_s2 = store
        .admit_client_session(&s2.sid, &alice.id, &web, T0 + 30, limit(1, false))
        .await
        .unwrap();
    let spa_in_s2 = store
        .admit_client_session(&s2.sid, &alice.id, &spa, T0 + 30, limit(1, false))
        .await
        .unwrap();
    assert_eq!(web_in_s2, SessionAdmission::Admitted { evicted: vec![] });
    assert_eq!(spa_in_s2, SessionAdmission::Refused);
    assert!(
        !store
            .end_refresh_family("nope", T0, EndReason::IdleTimeout)
            .await
            .unwrap()
    );
}

async fn a_client_with_another_live_family_in_the_session_still_counts(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;
    let web = stored_client(&store, client("web")).await.id;
    let s1 = stored_session(&store, &alice, T0).await;
    let s2 = stored_session(&store, &alice, T0 + 1).await;
    let (first, _) = stored_family(&store, &s1, &web, None, T0 + 2).await;
    let (_second, _) = stored_family(&store, &s1, &web, None, T0 + 3).await;
    store
        .admit_client_session(&s1.sid, &alice.id, &web, T0 + 2, unlimited())
        .await
        .unwrap();

    assert!(
        store
            .end_refresh_family(&first.id, T0 + 10, EndReason::IdleTimeout)
            .await
            .unwrap()
    );

    let web_in_s2 = store
        .admit_client_session(&s2.sid, &alice.id, &web, T0 + 30, limit(1, false))
        .await
        .unwrap();
    assert_eq!(
        web_in_s2,
        SessionAdmission::Refused,
        "web still holds tokens in s1"
    );
}

async fn a_code_is_found_used_or_not(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;
    let web = stored_client(&store, client("web")).await.id;
    let session = stored_session(&store, &alice, T0).await;
    let code = code(&session, &web, T0);
    store.insert_authorization_code(&code).await.unwrap();

    let unused = store
        .find_authorization_code(&code.code_hash)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(code_view(&unused), code_view(&code));
    assert_eq!(unused.used_at, None);
    store
        .consume_authorization_code(&code.code_hash, &web, T0 + 5)
        .await
        .unwrap();
    let used = store
        .find_authorization_code(&code.code_hash)
        .await
        .unwrap()
        .expect("still stored");
    assert_eq!(used.used_at, Some(T0 + 5));
    assert!(
        store
            .find_authorization_code(&Credential::generate().hash())
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_revoked_access_token_is_recorded_and_published_once(store: Arc<dyn Store>) {
    assert!(!store.is_access_token_revoked("jti-1").await.unwrap());

    store
        .insert_revoked_access_token("jti-1", T0 + 300, T0)
        .await
        .unwrap();
    store
        .insert_revoked_access_token("jti-1", T0 + 300, T0 + 5)
        .await
        .unwrap();

    assert!(store.is_access_token_revoked("jti-1").await.unwrap());
    assert!(!store.is_access_token_revoked("jti-2").await.unwrap());
    let published = feed(&store).await;
    assert_eq!(published.len(), 1, "revoking again publishes nothing");
    assert_eq!(published[0].jti.as_deref(), Some("jti-1"));
    assert_eq!(published[0].sid, None);
    assert_eq!(published[0].revoked_at, T0);
    assert_eq!(published[0].reason, "access_token_revoked");
}

async fn a_dpop_proof_is_accepted_once_within_its_window(store: Arc<dyn Store>) {
    let (key, other_key) = ("jkt-of-key-a", "jkt-of-key-b");
    let first = store
        .use_dpop_proof(key, "jti-1", T0 + 60, T0)
        .await
        .unwrap();
    let replayed = store
        .use_dpop_proof(key, "jti-1", T0 + 60, T0 + 59)
        .await
        .unwrap();
    // Its last acceptable second (expires_at is the last moment a proof is still accepted):
    // still a replay.
    assert!(
        !store
            .use_dpop_proof(key, "jti-1", T0 + 60, T0 + 60)
            .await
            .unwrap(),
        "replayed in the last second of its window"
    );
    // The same jti from another key, or another jti from the same key, is another proof.
    let other_key_same_jti = store
        .use_dpop_proof(other_key, "jti-1", T0 + 60, T0)
        .await
        .unwrap();
    let same_key_other_jti = store
        .use_dpop_proof(key, "jti-2", T0 + 60, T0)
        .await
        .unwrap();
    assert_eq!(
        (first, replayed, other_key_same_jti, same_key_other_jti),
        (true, false, true, true)
    );
    // Once the record has expired it counts as absent (the proof's own iat window refuses an
    // old proof; this is a new one that happens to repeat the jti).
    assert!(
        store
            .use_dpop_proof(key, "jti-1", T0 + 200, T0 + 61)
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_dpop_proof(key, "jti-1", T0 + 200, T0 + 62)
            .await
            .unwrap()
    );

    // Pruned with the access-token records: what expired before the cut goes.
    store
        .prune(
            ostiary_core::retention::Prunable::AccessTokens,
            T0 + 61,
            100,
        )
        .await
        .unwrap();
    assert!(
        // At a `now` before its expiry: only a pruned record lets this through.
        store
            .use_dpop_proof(other_key, "jti-1", T0 + 300, T0)
            .await
            .unwrap(),
        "the expired record of key b was pruned"
    );
    assert!(
        !store
            .use_dpop_proof(key, "jti-1", T0 + 300, T0 + 63)
            .await
            .unwrap(),
        "the live record of key a was kept"
    );
}

async fn a_rotation_keeps_the_dpop_binding_the_family_was_created_with(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;
    let spa = stored_client(&store, client("spa")).await.id;
    let session = stored_session(&store, &alice, T0).await;
    for bound in [None, Some("key-a".to_owned())] {
        let created = RefreshFamily {
            dpop_jkt: bound.clone(),
            ..family(&session, &spa, None, T0)
        };
        store
            .insert_refresh_family(&created, &Credential::generate().hash())
            .await
            .unwrap();
        for generation in 0..2 {
            let next = rotation(&created, generation, T0 + 1 + generation);
            assert!(store.rotate_refresh(&next).await.unwrap().rotated());
            assert_eq!(get_family(&store, &created.id).await.dpop_jkt, bound);
        }
    }
}

async fn a_rotation_records_its_dpop_proof_and_applies_only_with_its_first_use(
    store: Arc<dyn Store>,
) {
    let alice = stored_user(&store, "alice").await;
    let spa = stored_client(&store, client("spa")).await.id;
    let session = stored_session(&store, &alice, T0).await;
    let (family, _) = stored_family(&store, &session, &spa, None, T0).await;
    let proof = |jti: &str| DpopProofRecord {
        jkt: "jkt-of-key-a".into(),
        jti_hash: jti.into(),
        expires_at: T0 + 60,
    };
    let with_proof = |generation: i64, now: i64, jti: &str| Rotation {
        dpop_proof: Some(proof(jti)),
        ..rotation(&family, generation, now)
    };

    // A first use: the rotation applies and the proof is used up with it.
    let first = with_proof(0, T0 + 1, "jti-1");
    assert_eq!(
        store.rotate_refresh(&first).await.unwrap(),
        RotationOutcome::Rotated
    );
    assert!(
        !store
            .use_dpop_proof("jkt-of-key-a", "jti-1", T0 + 60, T0 + 2)
            .await
            .unwrap(),
        "recorded with the rotation"
    );

    // The same proof again, at the current generation: a replay, and nothing happens.
    let replay = with_proof(1, T0 + 3, "jti-1");
    assert_eq!(
        store.rotate_refresh(&replay).await.unwrap(),
        RotationOutcome::ProofReplayed
    );
    let stored = get_family(&store, &family.id).await;
    assert_eq!((stored.generation, stored.rotated_at), (1, T0 + 1));
    assert!(
        store
            .find_refresh_token(&replay.new_token_hash)
            .await
            .unwrap()
            .is_none()
    );

    // A fresh proof with a stale generation: lost, and the answer says whether the proof was
    // used up all the same (then it is refused next time); either way nothing else changed.
    let stale = with_proof(0, T0 + 4, "jti-2");
    let RotationOutcome::Lost { proof_recorded } = store.rotate_refresh(&stale).await.unwrap()
    else {
        panic!("a stale generation never rotates");
    };
    assert_eq!(
        store
            .use_dpop_proof("jkt-of-key-a", "jti-2", T0 + 60, T0 + 5)
            .await
            .unwrap(),
        !proof_recorded,
        "the answer says whether the lost rotation recorded its proof"
    );
    assert_eq!(get_family(&store, &family.id).await.generation, 1);

    // A proof recorded before (by another request) stops the rotation that carries it.
    store
        .use_dpop_proof("jkt-of-key-a", "jti-3", T0 + 60, T0 + 6)
        .await
        .unwrap();
    assert_eq!(
        store
            .rotate_refresh(&with_proof(1, T0 + 7, "jti-3"))
            .await
            .unwrap(),
        RotationOutcome::ProofReplayed
    );
    assert_eq!(
        store
            .rotate_refresh(&with_proof(1, T0 + 8, "jti-4"))
            .await
            .unwrap(),
        RotationOutcome::Rotated
    );
    assert_eq!(get_family(&store, &family.id).await.generation, 2);
}
