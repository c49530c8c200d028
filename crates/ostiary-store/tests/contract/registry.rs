//! Users, clients and signing keys.

use std::sync::Arc;

use ostiary_core::client::{ClientKind, RedirectUri, WebOrigin};
use ostiary_core::keys::{SigningAlgorithm, StoredKey};
use ostiary_core::secret::Credential;
use ostiary_core::session::{ClientPolicy, SessionLimitAction};
use ostiary_core::user::{PasswordHashString, Username};
use ostiary_core::{Store, StoreError};
use secrecy::ExposeSecret as _;

use crate::fixtures::*;

contract!(
    a_user_is_found_by_id_and_by_username_in_any_case,
    a_username_taken_in_another_case_is_a_conflict,
    users_are_listed_by_username_ignoring_case,
    a_password_change_and_the_disabled_flag_are_stored_and_unknown_users_report_false,
    a_client_round_trips_with_its_lists_logout_uri_and_policy,
    a_taken_client_id_is_a_conflict,
    clients_are_listed_by_id,
    a_client_policy_is_replaced_and_an_unknown_client_reports_false,
    signing_keys_round_trip_in_creation_order_and_a_taken_kid_is_a_conflict,
);

async fn a_user_is_found_by_id_and_by_username_in_any_case(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "Alice.Smith").await;

    let by_id = store.find_user(&alice.id).await.unwrap().unwrap();
    let by_lower = store
        .find_user_by_username(&Username::parse("alice.smith").unwrap())
        .await
        .unwrap()
        .unwrap();
    let by_upper = store
        .find_user_by_username(&Username::parse("ALICE.SMITH").unwrap())
        .await
        .unwrap()
        .unwrap();

    assert_eq!(user_view(&by_id), user_view(&alice));
    assert_eq!(user_view(&by_lower), user_view(&alice));
    assert_eq!(user_view(&by_upper), user_view(&alice));
    assert_eq!(
        by_upper.username.as_str(),
        "Alice.Smith",
        "kept as first written"
    );
    assert!(store.find_user("no-such-id").await.unwrap().is_none());
    let nobody = Username::parse("bob").unwrap();
    assert!(
        store
            .find_user_by_username(&nobody)
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_username_taken_in_another_case_is_a_conflict(store: Arc<dyn Store>) {
    stored_user(&store, "alice").await;

    let again = store.insert_user(&user("ALICE")).await;

    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(store.list_users().await.unwrap().len(), 1);
}

async fn users_are_listed_by_username_ignoring_case(store: Arc<dyn Store>) {
    for name in ["carol", "Bob", "alice", "Dave_1", "dave"] {
        stored_user(&store, name).await;
    }

    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .iter()
        .map(|u| u.username.to_string())
        .collect();

    assert_eq!(names, ["alice", "Bob", "carol", "dave", "Dave_1"]);
}

async fn a_password_change_and_the_disabled_flag_are_stored_and_unknown_users_report_false(
    store: Arc<dyn Store>,
) {
    let alice = stored_user(&store, "alice").await;
    let new_hash = PasswordHashString::from_stored("$argon2id$v=19$new".into());

    assert!(
        store
            .update_user_password(&alice.id, &new_hash)
            .await
            .unwrap()
    );
    assert!(
        store
            .update_user_disabled(&Username::parse("ALICE").unwrap(), true)
            .await
            .unwrap(),
        "matched without regard to case"
    );
    let stored = store.find_user(&alice.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash.as_str(), "$argon2id$v=19$new");
    assert!(stored.disabled);

    assert!(
        store
            .update_user_disabled(&Username::parse("alice").unwrap(), false)
            .await
            .unwrap()
    );
    assert!(!store.find_user(&alice.id).await.unwrap().unwrap().disabled);

    assert!(
        !store
            .update_user_password("no-such-id", &new_hash)
            .await
            .unwrap()
    );
    assert!(
        !store
            .update_user_disabled(&Username::parse("nobody").unwrap(), true)
            .await
            .unwrap()
    );
}

async fn a_client_round_trips_with_its_lists_logout_uri_and_policy(store: Arc<dyn Store>) {
    let full = ostiary_core::client::Client {
        kind: ClientKind::Confidential,
        secret_hash: Some(Credential::generate().hash()),
        redirect_uris: vec![
            RedirectUri::parse("https://app.ostiary.test/cb").unwrap(),
            RedirectUri::parse("http://127.0.0.1/cb").unwrap(),
        ],
        post_logout_redirect_uris: vec![
            RedirectUri::parse("https://app.ostiary.test/bye").unwrap(),
        ],
        allowed_resources: vec![API.into(), "https://other.ostiary.test".into()],
        extra_scopes: vec!["read:things".into(), "write".into()],
        web_origins: vec![WebOrigin::parse("https://app.ostiary.test").unwrap()],
        backchannel_logout_uri: Some(logout_uri("web")),
        policy: ClientPolicy {
            idle_timeout: Some(600),
            absolute_lifetime: Some(3600),
            refresh_grace: Some(0),
            refresh_recovery: Some(30),
            max_sessions_per_user: Some(2),
            on_session_limit: Some(SessionLimitAction::RefuseNewLogin),
            require_dpop: Some(true),
            require_dpop_nonce: Some(true),
        },
        ..client("web")
    };
    let bare = client("spa");
    store.insert_client(&full).await.unwrap();
    store.insert_client(&bare).await.unwrap();

    let found_full = store.find_client(&client_id("web")).await.unwrap().unwrap();
    let found_bare = store.find_client(&client_id("spa")).await.unwrap().unwrap();

    assert_eq!(client_view(&found_full), client_view(&full));
    assert_eq!(client_view(&found_bare), client_view(&bare));
    assert!(
        store
            .find_client(&client_id("nope"))
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_taken_client_id_is_a_conflict(store: Arc<dyn Store>) {
    stored_client(&store, client("web")).await;

    let again = store.insert_client(&client_with_logout("web")).await;

    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let kept = store.find_client(&client_id("web")).await.unwrap().unwrap();
    assert!(
        kept.backchannel_logout_uri.is_none(),
        "the first one is kept"
    );
}

async fn clients_are_listed_by_id(store: Arc<dyn Store>) {
    for id in ["web", "api", "Zeta", "spa"] {
        stored_client(&store, client(id)).await;
    }

    let ids: Vec<String> = store
        .list_clients()
        .await
        .unwrap()
        .iter()
        .map(|c| c.id.to_string())
        .collect();

    assert_eq!(
        ids,
        ["Zeta", "api", "spa", "web"],
        "byte order, as SQLite sorts"
    );
}

async fn a_client_policy_is_replaced_and_an_unknown_client_reports_false(store: Arc<dyn Store>) {
    stored_client(&store, client("web")).await;
    let policy = ClientPolicy {
        max_sessions_per_user: Some(1),
        on_session_limit: Some(SessionLimitAction::EndOldest),
        ..ClientPolicy::default()
    };

    assert!(
        store
            .update_client_policy(&client_id("web"), &policy)
            .await
            .unwrap()
    );
    let stored = store.find_client(&client_id("web")).await.unwrap().unwrap();
    assert_eq!(stored.policy, policy);

    assert!(
        store
            .update_client_policy(&client_id("web"), &ClientPolicy::default())
            .await
            .unwrap()
    );
    let cleared = store.find_client(&client_id("web")).await.unwrap().unwrap();
    assert!(cleared.policy.is_empty());

    assert!(
        !store
            .update_client_policy(&client_id("nope"), &policy)
            .await
            .unwrap()
    );
}

async fn signing_keys_round_trip_in_creation_order_and_a_taken_kid_is_a_conflict(
    store: Arc<dyn Store>,
) {
    let key = |kid: &str, alg, created_at, der: Vec<u8>| StoredKey {
        kid: kid.into(),
        alg,
        private_pkcs8: der.into(),
        created_at,
        activates_at: created_at + 5,
    };
    assert!(store.list_signing_keys().await.unwrap().is_empty());
    let bytes: Vec<u8> = (0..=255).collect();
    store
        .insert_signing_key(&key("k2", SigningAlgorithm::RS256, T0 + 10, vec![9; 1200]))
        .await
        .unwrap();
    store
        .insert_signing_key(&key("k1", SigningAlgorithm::ES256, T0, bytes.clone()))
        .await
        .unwrap();
    store
        .insert_signing_key(&key("k3", SigningAlgorithm::EdDSA, T0 + 20, vec![0, 0, 1]))
        .await
        .unwrap();

    let again = store
        .insert_signing_key(&key("k1", SigningAlgorithm::EdDSA, T0 + 30, vec![1]))
        .await;
    let keys = store.list_signing_keys().await.unwrap();

    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert!(keys.iter().all(|k| k.activates_at == k.created_at + 5));
    let listed: Vec<(String, SigningAlgorithm, Vec<u8>, i64)> = keys
        .iter()
        .map(|k| {
            (
                k.kid.clone(),
                k.alg,
                k.private_pkcs8.expose_secret().to_vec(),
                k.created_at,
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("k1".into(), SigningAlgorithm::ES256, bytes, T0),
            ("k2".into(), SigningAlgorithm::RS256, vec![9; 1200], T0 + 10),
            ("k3".into(), SigningAlgorithm::EdDSA, vec![0, 0, 1], T0 + 20),
        ]
    );
}
