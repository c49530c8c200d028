//! Many tasks at once against one store (several connections): the atomicity the trait
//! promises must hold without any in-process lock, as it must across IdP instances.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ostiary_core::Store;
use ostiary_core::code::CodeConsumption;
use ostiary_core::secret::Credential;
use ostiary_core::session::EndReason;
use ostiary_core::store::{RevocationEntry, RotationOutcome, SessionAdmission};
use tokio::task::JoinSet;

use crate::fixtures::*;

contract!(
    parallel_rotations_of_one_generation_have_exactly_one_winner,
    parallel_rotations_of_many_families_are_each_answered_as_if_alone,
    rotations_abandoned_midway_leave_the_store_consistent_and_usable,
    parallel_consumptions_of_one_code_have_exactly_one_first_use,
    parallel_logins_under_a_refusing_limit_of_one_admit_exactly_one,
    parallel_logins_under_an_evicting_limit_of_one_leave_exactly_one_session,
    parallel_client_admissions_under_a_refusing_limit_of_one_admit_exactly_one,
    parallel_claims_never_share_a_delivery,
    parallel_endings_reach_a_concurrent_feed_reader_in_order_and_complete,
    endings_racing_rotations_and_logins_all_complete,
);

const TASKS: usize = 16;

/// Runs `TASKS` copies of `work` at once and collects their results.
async fn all_at_once<T, F, Fut>(work: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    for i in 0..TASKS {
        tasks.spawn(work(i));
    }
    tasks.join_all().await
}

async fn parallel_rotations_of_one_generation_have_exactly_one_winner(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;
    let web = stored_client(&store, client("web")).await.id;
    let session = stored_session(&store, &alice, T0).await;
    let (family, _) = stored_family(&store, &session, &web, None, T0).await;

    let won = all_at_once(|i| {
        let store = Arc::clone(&store);
        let rotation = rotation(&family, 0, T0 + 1 + i as i64);
        async move {
            (
                store.rotate_refresh(&rotation).await.unwrap().rotated(),
                rotation,
            )
        }
    })
    .await;

    let winners: Vec<_> = won.iter().filter(|(won, _)| *won).collect();
    assert_eq!(winners.len(), 1);
    let stored = get_family(&store, &family.id).await;
    assert_eq!(stored.generation, 1);
    assert_eq!(stored.rotated_at, winners[0].1.now);
    let (_, generation) = store
        .find_refresh_token(&winners[0].1.new_token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(generation, 1);
    for (_, lost) in won.iter().filter(|(won, _)| !*won) {
        assert!(
            store
                .find_refresh_token(&lost.new_token_hash)
                .await
                .unwrap()
                .is_none()
        );
    }
    let rotated = events(&store, ostiary_core::audit::AuditKind::RefreshRotated).await;
    assert_eq!(rotated.len(), 1);
}

/// Rotations of many families at once (which SQLite's writer commits in shared
/// transactions): each family gets exactly one winner per generation, every winner is kept,
/// and a rotation that fails (its new token's hash is already taken) fails alone.
async fn parallel_rotations_of_many_families_are_each_answered_as_if_alone(store: Arc<dyn Store>) {
    const FAMILIES: usize = 12;
    const TRIES: usize = 4;
    let alice = stored_user(&store, "alice").await;
    let web = stored_client(&store, client("web")).await.id;
    let mut families = Vec::new();
    for _ in 0..FAMILIES {
        let session = stored_session(&store, &alice, T0).await;
        families.push(stored_family(&store, &session, &web, None, T0).await);
    }
    let (_, taken_hash) = families[0].clone();
    let mut tasks = JoinSet::new();
    for (f, (family, _)) in families.iter().enumerate() {
        for t in 0..TRIES {
            let store = Arc::clone(&store);
            let mut rotation = rotation(family, 0, T0 + 1 + t as i64);
            let failing = f == FAMILIES - 1 && t == 0;
            if failing {
                // A hash that already exists: this rotation's INSERT must fail, alone.
                rotation.new_token_hash = taken_hash.clone();
            }
            tasks.spawn(
                async move { (f, failing, store.rotate_refresh(&rotation).await, rotation) },
            );
        }
    }
    let outcomes = tasks.join_all().await;

    for (f, (family, _)) in families.iter().enumerate() {
        let mine: Vec<_> = outcomes.iter().filter(|(of, ..)| *of == f).collect();
        let winners: Vec<_> = mine
            .iter()
            .filter(|(_, _, outcome, _)| matches!(outcome, Ok(RotationOutcome::Rotated)))
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "family {f}: {:?}",
            mine.iter().map(|m| &m.2).collect::<Vec<_>>()
        );
        let winner = &winners[0].3;
        let stored = get_family(&store, &family.id).await;
        assert_eq!((stored.generation, stored.rotated_at), (1, winner.now));
        let (found, generation) = store
            .find_refresh_token(&winner.new_token_hash)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((found.id.as_str(), generation), (family.id.as_str(), 1));
        for (_, failing, outcome, _) in &mine {
            if *failing {
                // It failed, or lost the race before reaching its INSERT: never a winner.
                assert!(
                    !matches!(outcome, Ok(RotationOutcome::Rotated)),
                    "{outcome:?}"
                );
            } else {
                assert!(outcome.is_ok(), "family {f}: {outcome:?}");
            }
        }
    }
    let rotated = events(&store, ostiary_core::audit::AuditKind::RefreshRotated).await;
    assert_eq!(rotated.len(), FAMILIES);
}

/// A caller that goes away mid-call (a client disconnecting, a timeout) drops the store's
/// future wherever it was: before it sent anything, between statements, waiting for the
/// commit. Each rotation must then have happened entirely or not at all, and no connection may
/// go back to the pool in the middle of a transaction: every later call still works.
async fn rotations_abandoned_midway_leave_the_store_consistent_and_usable(store: Arc<dyn Store>) {
    use std::task::Poll;
    const CALLS: usize = 48;
    let alice = stored_user(&store, "alice").await;
    let web = stored_client(&store, client("web")).await.id;
    let shared = stored_session(&store, &alice, T0).await;
    let mut attempts = Vec::new();
    for i in 0..CALLS {
        let (family, _) = stored_family(&store, &shared, &web, None, T0).await;
        let rotation = rotation(&family, 0, T0 + 1);
        // Polled 0 to 11 times, giving the runtime a turn in between, then dropped.
        let mut call = Box::pin(store.rotate_refresh(&rotation));
        for _ in 0..i % 12 {
            let ready =
                std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx).is_ready())).await;
            if ready {
                break;
            }
            tokio::task::yield_now().await;
        }
        drop(call);
        attempts.push((family, rotation));
    }

    // Every pooled connection is usable: as many calls at once as any pool has connections.
    let outcomes = all_at_once(|i| {
        let store = Arc::clone(&store);
        let web = web.clone();
        let alice = alice.clone();
        async move {
            let session = session(&alice, T0 + i as i64);
            store
                .insert_session(&session, unlimited(), &login_event(&session))
                .await?;
            let family = family(&session, &web, None, T0);
            store
                .insert_refresh_family(&family, &Credential::generate().hash())
                .await?;
            store.rotate_refresh(&rotation(&family, 0, T0 + 2)).await
        }
    })
    .await;
    for outcome in outcomes {
        assert!(
            matches!(outcome, Ok(RotationOutcome::Rotated)),
            "{outcome:?}"
        );
    }

    // All or nothing, for each abandoned rotation. (One may still be finishing: a rotated
    // family is read first, then its token, so each check holds whatever happens meanwhile.)
    for (family, rotation) in &attempts {
        let stored = get_family(&store, &family.id).await;
        if stored.generation == 1 {
            let grant = store
                .find_refresh_grant(&rotation.new_token_hash)
                .await
                .unwrap()
                .expect("a rotated family has its new token");
            assert_eq!(grant.generation, 1);
            assert_eq!(
                grant.session.last_used_at,
                T0 + 1,
                "the session was touched"
            );
        } else {
            assert_eq!(stored.generation, 0);
        }
        if let Some(grant) = store
            .find_refresh_grant(&rotation.new_token_hash)
            .await
            .unwrap()
        {
            assert_eq!(
                grant.family.generation, 1,
                "a stored token has its rotation"
            );
        }
    }
}

async fn parallel_consumptions_of_one_code_have_exactly_one_first_use(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;
    let web = stored_client(&store, client("web")).await.id;
    let session = stored_session(&store, &alice, T0).await;
    let code = code(&session, &web, T0);
    store.insert_authorization_code(&code).await.unwrap();

    let outcomes = all_at_once(|_| {
        let store = Arc::clone(&store);
        let hash = code.code_hash.clone();
        let web = web.clone();
        async move {
            store
                .consume_authorization_code(&hash, &web, T0 + 1)
                .await
                .unwrap()
        }
    })
    .await;

    let first = outcomes
        .iter()
        .filter(|o| matches!(o, CodeConsumption::First(_)))
        .count();
    let replayed = outcomes
        .iter()
        .filter(|o| matches!(o, CodeConsumption::Replayed(_)))
        .count();
    assert_eq!((first, replayed), (1, TASKS - 1));
}

async fn parallel_logins_under_a_refusing_limit_of_one_admit_exactly_one(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;

    let admissions = all_at_once(|i| {
        let store = Arc::clone(&store);
        let session = session(&alice, T0 + i as i64);
        async move {
            store
                .insert_session(&session, limit(1, false), &login_event(&session))
                .await
                .unwrap()
        }
    })
    .await;

    let admitted = admissions
        .iter()
        .filter(|a| matches!(a, SessionAdmission::Admitted { .. }))
        .count();
    assert_eq!(admitted, 1, "{admissions:?}");
    assert_eq!(
        store
            .list_active_sessions(Some(&alice.id))
            .await
            .unwrap()
            .len(),
        1
    );
    let logins = events(&store, ostiary_core::audit::AuditKind::LoginSucceeded).await;
    assert_eq!(logins.len(), 1);
}

async fn parallel_logins_under_an_evicting_limit_of_one_leave_exactly_one_session(
    store: Arc<dyn Store>,
) {
    let alice = stored_user(&store, "alice").await;

    let admissions = all_at_once(|_| {
        let store = Arc::clone(&store);
        // All at the same time: the order of the logins is the store's to decide.
        let session = session(&alice, T0);
        async move {
            store
                .insert_session(&session, limit(1, true), &login_event(&session))
                .await
                .unwrap()
        }
    })
    .await;

    let evicted: usize = admissions
        .iter()
        .map(|a| match a {
            SessionAdmission::Admitted { evicted } => evicted.len(),
            SessionAdmission::Refused => panic!("an evicting limit never refuses"),
        })
        .sum();
    assert_eq!(
        evicted,
        TASKS - 1,
        "each login but the first evicted exactly one"
    );
    assert_eq!(
        store
            .list_active_sessions(Some(&alice.id))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(feed(&store).await.len(), TASKS - 1);
}

async fn parallel_client_admissions_under_a_refusing_limit_of_one_admit_exactly_one(
    store: Arc<dyn Store>,
) {
    let alice = stored_user(&store, "alice").await;
    let web = stored_client(&store, client("web")).await.id;
    let mut sessions = Vec::new();
    for _ in 0..TASKS {
        sessions.push(stored_session(&store, &alice, T0).await);
    }

    let admissions = all_at_once(|i| {
        let store = Arc::clone(&store);
        let (sid, user, web) = (sessions[i].sid.clone(), alice.id.clone(), web.clone());
        async move {
            store
                .admit_client_session(&sid, &user, &web, T0 + 1, limit(1, false))
                .await
                .unwrap()
        }
    })
    .await;

    let admitted = admissions
        .iter()
        .filter(|a| matches!(a, SessionAdmission::Admitted { .. }))
        .count();
    assert_eq!(admitted, 1, "{admissions:?}");
}

async fn parallel_claims_never_share_a_delivery(store: Arc<dyn Store>) {
    let times: Vec<i64> = (0..40).map(|i| T0 + i).collect();
    crate::backchannel::owe_deliveries(&store, &times).await;

    let claims = all_at_once(|_| {
        let store = Arc::clone(&store);
        async move {
            store
                .claim_backchannel_deliveries(T0 + 100, 60, 5)
                .await
                .unwrap()
        }
    })
    .await;
    let rest = store
        .claim_backchannel_deliveries(T0 + 100, 60, 100)
        .await
        .unwrap();

    let mut seen = BTreeSet::new();
    for delivery in claims.iter().flatten().chain(&rest) {
        assert!(
            seen.insert(delivery.id),
            "delivery {} claimed twice",
            delivery.id
        );
    }
    assert_eq!(seen.len(), 40, "every delivery claimed once");
}

async fn parallel_endings_reach_a_concurrent_feed_reader_in_order_and_complete(
    store: Arc<dyn Store>,
) {
    // Half the users end all their sessions in one transaction (several entries each, which
    // would interleave with other transactions' entries if seqs were not taken in commit
    // order), the other half one session at a time; and access tokens are revoked meanwhile.
    const USERS: usize = 8;
    const SESSIONS_PER_USER: usize = 6;
    let web = stored_client(&store, client_with_logout("web")).await.id;
    let mut users = Vec::new();
    for u in 0..USERS {
        let user = stored_user(&store, &format!("user{u}")).await;
        let mut sids = Vec::new();
        for _ in 0..SESSIONS_PER_USER {
            let s = stored_session(&store, &user, T0).await;
            redeemed_code(&store, &s, &web, T0).await;
            sids.push(s.sid);
        }
        users.push((user.id, sids));
    }
    let writers_done = Arc::new(AtomicBool::new(false));
    // Pages through the feed as a resource server does, while the writers publish.
    let reader = tokio::spawn({
        let store = Arc::clone(&store);
        let writers_done = Arc::clone(&writers_done);
        async move {
            let mut cursor = 0;
            let mut seen: Vec<RevocationEntry> = Vec::new();
            loop {
                // Read the flag before the page: an empty page after it means all is read.
                let finished = writers_done.load(Ordering::SeqCst);
                let page = store.list_revocations(cursor, 0, 5).await.unwrap();
                if page.is_empty() && finished {
                    return seen;
                }
                for entry in page {
                    assert!(entry.seq > cursor);
                    cursor = entry.seq;
                    seen.push(entry);
                }
                tokio::task::yield_now().await;
            }
        }
    });

    let mut writers = JoinSet::new();
    for (u, (user_id, sids)) in users.into_iter().enumerate() {
        let store = Arc::clone(&store);
        writers.spawn(async move {
            if u % 2 == 0 {
                let ended = store
                    .end_sessions_of_user(&user_id, T0 + 1, EndReason::UserDisabled)
                    .await
                    .unwrap();
                assert_eq!(ended.len(), SESSIONS_PER_USER);
            } else {
                for sid in sids {
                    assert!(
                        store
                            .end_session(&sid, T0 + 1, EndReason::Logout, None)
                            .await
                            .unwrap()
                    );
                }
            }
        });
    }
    for i in 0..USERS * SESSIONS_PER_USER {
        let store = Arc::clone(&store);
        writers.spawn(async move {
            store
                .insert_revoked_access_token(&format!("jti-{i}"), T0 + 300, T0 + 1)
                .await
                .unwrap();
        });
    }
    writers.join_all().await;
    writers_done.store(true, Ordering::SeqCst);
    let seen = reader.await.unwrap();

    let all = feed(&store).await;
    assert_eq!(all.len(), 2 * USERS * SESSIONS_PER_USER);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        seen.iter().map(|e| e.seq).collect::<Vec<_>>(),
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        "the reader missed nothing and saw nothing twice"
    );
    assert_eq!(seen, all);
}

async fn endings_racing_rotations_and_logins_all_complete(store: Arc<dyn Store>) {
    // Sessions, families, users and the feed locked from every direction at once: every
    // call must complete (no deadlock surfaces as an error), and the outcome is consistent.
    let alice = stored_user(&store, "alice").await;
    let clients = [
        stored_client(&store, client_with_logout("web")).await.id,
        stored_client(&store, client_with_logout("spa")).await.id,
    ];
    let mut families = Vec::new();
    let mut sids = Vec::new();
    for _ in 0..4 {
        let s = stored_session(&store, &alice, T0).await;
        for client in &clients {
            let code = redeemed_code(&store, &s, client, T0).await;
            store
                .admit_client_session(&s.sid, &alice.id, client, T0, unlimited())
                .await
                .unwrap();
            families.push(
                stored_family(&store, &s, client, Some(&code.code_hash), T0)
                    .await
                    .0,
            );
        }
        sids.push(s.sid);
    }

    let mut tasks = JoinSet::new();
    for family in &families {
        for generation in 0..3 {
            let store = Arc::clone(&store);
            let rotation = rotation(family, generation, T0 + 5);
            tasks.spawn(async move {
                store.rotate_refresh(&rotation).await.unwrap().rotated();
            });
        }
        let store = Arc::clone(&store);
        let id = family.id.clone();
        tasks.spawn(async move {
            store
                .end_refresh_family(&id, T0 + 6, EndReason::IdleTimeout)
                .await
                .unwrap();
        });
    }
    for sid in sids.iter().rev() {
        let store = Arc::clone(&store);
        let sid = sid.clone();
        tasks.spawn(async move {
            store
                .end_session(&sid, T0 + 7, EndReason::Logout, None)
                .await
                .unwrap();
        });
    }
    for i in 0..4 {
        let store = Arc::clone(&store);
        let session = session(&alice, T0 + 8);
        let client = clients[i % 2].clone();
        let user = alice.id.clone();
        let existing = sids[i].clone();
        tasks.spawn(async move {
            store
                .insert_session(&session, limit(2, true), &login_event(&session))
                .await
                .unwrap();
            store
                .admit_client_session(&existing, &user, &client, T0 + 8, limit(1, true))
                .await
                .unwrap();
            store
                .insert_revoked_access_token(&session.sid, T0 + 300, T0 + 8)
                .await
                .unwrap();
        });
    }
    {
        let store = Arc::clone(&store);
        let user = alice.id.clone();
        tasks.spawn(async move {
            store
                .end_sessions_of_user(&user, T0 + 9, EndReason::AdminRevoked)
                .await
                .unwrap();
        });
    }
    tasks.join_all().await;

    for sid in &sids {
        assert!(get_session(&store, sid).await.ended_at.is_some());
    }
    for family in &families {
        assert!(get_family(&store, &family.id).await.ended_at.is_some());
    }
    let all = feed(&store).await;
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    let published: BTreeSet<&str> = all.iter().filter_map(|e| e.sid.as_deref()).collect();
    assert_eq!(
        published.len(),
        all.iter().filter(|e| e.sid.is_some()).count(),
        "every session is published once"
    );
    for sid in &sids {
        assert!(published.contains(sid.as_str()));
    }
}
