//! Text no database can keep (NUL), through every store method that takes text: writes are
//! refused as invalid input naming the field, lookups by it find nothing, and nothing is ever
//! an outage, on every backend alike.

use std::sync::Arc;

use ostiary_core::audit::{AuditEvent, AuditFilter, AuditKind};
use ostiary_core::client::ClientId;
use ostiary_core::code::CodeConsumption;
use ostiary_core::keys::{SigningAlgorithm, StoredKey};
use ostiary_core::secret::Credential;
use ostiary_core::session::{ClientPolicy, EndReason};
use ostiary_core::store::{DeliveryOutcome, StoreError};
use ostiary_core::throttle::{LoginThrottle, ThrottlePolicy};
use ostiary_core::user::{PasswordHashString, Username};
use ostiary_core::{Store, store::ThrottleKey};

use crate::fixtures::*;

contract!(
    writes_of_text_with_nul_are_refused_as_invalid_input_naming_the_field,
    lookups_and_changes_by_text_with_nul_find_nothing,
    diagnostic_text_with_nul_is_kept_cleaned,
);

const NUL: &str = "a\0b";

/// Asserts the result is the refusal of `field` (never an outage).
fn refused<T: std::fmt::Debug>(result: Result<T, StoreError>, field: &str) {
    match result {
        Err(StoreError::InvalidInput(named)) => assert_eq!(named, field),
        other => panic!("expected InvalidInput({field}), got {other:?}"),
    }
}

fn event_with(field: &str) -> AuditEvent {
    let mut event = AuditEvent::new(T0, AuditKind::LoginFailed, "user");
    let text = Some(NUL.to_owned());
    match field {
        "audit actor" => event.actor = NUL.to_owned(),
        "audit user" => event.user_id = text,
        "audit sid" => event.sid = text,
        "audit client" => event.client_id = text,
        "audit ip" => event.ip = text,
        "audit user agent" => event.user_agent = text,
        other => panic!("no audit field {other}"),
    }
    event
}

const AUDIT_FIELDS: [&str; 6] = [
    "audit actor",
    "audit user",
    "audit sid",
    "audit client",
    "audit ip",
    "audit user agent",
];

async fn writes_of_text_with_nul_are_refused_as_invalid_input_naming_the_field(
    store: Arc<dyn Store>,
) {
    let alice = stored_user(&store, "alice").await;
    let web = stored_client(&store, client("web")).await.id;
    let session = stored_session(&store, &alice, T0).await;

    // Users.
    refused(
        store
            .insert_user(&ostiary_core::user::User {
                id: NUL.into(),
                ..user("bob")
            })
            .await,
        "user id",
    );
    refused(
        store
            .insert_user(&ostiary_core::user::User {
                password_hash: PasswordHashString::from_stored(NUL.into()),
                ..user("bob")
            })
            .await,
        "password hash",
    );
    refused(
        store
            .update_user_password(&alice.id, &PasswordHashString::from_stored(NUL.into()))
            .await,
        "password hash",
    );

    // Clients: a resource and a scope are plain strings in the client.
    refused(
        store
            .insert_client(&ostiary_core::client::Client {
                allowed_resources: vec![format!("{API}/{NUL}")],
                ..client("spa")
            })
            .await,
        "resource",
    );
    refused(
        store
            .insert_client(&ostiary_core::client::Client {
                extra_scopes: vec![NUL.into()],
                ..client("spa")
            })
            .await,
        "scope",
    );

    // Signing keys.
    let key = StoredKey {
        kid: NUL.into(),
        alg: SigningAlgorithm::ES256,
        private_pkcs8: vec![1, 2, 3].into(),
        created_at: T0,
        activates_at: T0,
    };
    refused(store.insert_signing_key(&key).await, "kid");
    refused(store.insert_next_signing_key(&key, T0).await, "kid");

    // Sessions, each text field.
    for (field, change) in [("sid", 0), ("user id", 1), ("user agent", 2), ("ip", 3)] {
        let mut bad = ostiary_core::session::Session {
            ..crate::fixtures::session(&alice, T0)
        };
        match change {
            0 => bad.sid = NUL.into(),
            1 => bad.user_id = NUL.into(),
            2 => bad.user_agent = Some(NUL.into()),
            _ => bad.ip = Some(NUL.into()),
        }
        refused(
            store
                .insert_session(&bad, unlimited(), &login_event(&session))
                .await,
            field,
        );
    }
    for field in AUDIT_FIELDS {
        let fresh = crate::fixtures::session(&alice, T0);
        refused(
            store
                .insert_session(&fresh, unlimited(), &event_with(field))
                .await,
            field,
        );
        refused(store.insert_audit_event(&event_with(field)).await, field);
        refused(
            store
                .end_session(
                    &session.sid,
                    T0,
                    EndReason::Logout,
                    Some(&event_with(field)),
                )
                .await,
            field,
        );
    }
    refused(
        store
            .admit_client_session(NUL, &alice.id, &web, T0, unlimited())
            .await,
        "sid",
    );
    refused(
        store
            .admit_client_session(&session.sid, NUL, &web, T0, unlimited())
            .await,
        "user id",
    );

    // Codes.
    let good_code = code(&session, &web, T0);
    for (field, change) in [
        ("redirect URI", 0),
        ("sid", 1),
        ("user id", 2),
        ("resource", 3),
        ("nonce", 4),
    ] {
        let mut bad = good_code.clone();
        bad.code_hash = Credential::generate().hash();
        match change {
            0 => bad.redirect_uri = NUL.into(),
            1 => bad.sid = NUL.into(),
            2 => bad.user_id = NUL.into(),
            3 => bad.resource = NUL.into(),
            _ => bad.nonce = Some(NUL.into()),
        }
        refused(store.insert_authorization_code(&bad).await, field);
    }
    store.insert_authorization_code(&good_code).await.unwrap();
    assert!(
        matches!(
            store
                .consume_authorization_code(&good_code.code_hash, &web, T0)
                .await
                .unwrap(),
            CodeConsumption::First(_)
        ),
        "the refused attempts spent nothing"
    );

    // Refresh families, rotations, access tokens.
    let good_family = family(&session, &web, None, T0);
    for (field, change) in [
        ("family id", 0),
        ("sid", 1),
        ("user id", 2),
        ("resource", 3),
        ("ip", 4),
        ("user agent", 5),
    ] {
        let mut bad = good_family.clone();
        match change {
            0 => bad.id = NUL.into(),
            1 => bad.sid = NUL.into(),
            2 => bad.user_id = NUL.into(),
            3 => bad.resource = NUL.into(),
            4 => bad.last_use_ip = Some(NUL.into()),
            _ => bad.last_use_user_agent = Some(NUL.into()),
        }
        refused(
            store
                .insert_refresh_family(&bad, &Credential::generate().hash())
                .await,
            field,
        );
    }
    let (stored, _) = stored_family(&store, &session, &web, None, T0).await;
    let mut rotation_bad_ip = rotation(&stored, 0, T0 + 1);
    rotation_bad_ip.ip = Some(NUL.into());
    refused(store.rotate_refresh(&rotation_bad_ip).await, "ip");
    let mut rotation_bad_ua = rotation(&stored, 0, T0 + 1);
    rotation_bad_ua.user_agent = Some(NUL.into());
    refused(store.rotate_refresh(&rotation_bad_ua).await, "user agent");
    for field in AUDIT_FIELDS {
        let mut bad = rotation(&stored, 0, T0 + 1);
        bad.audit = event_with(field);
        refused(store.rotate_refresh(&bad).await, field);
        refused(
            store
                .reissue_successor(&stored.id, 0, &event_with(field))
                .await,
            field,
        );
    }
    assert_eq!(
        get_family(&store, &stored.id).await.generation,
        0,
        "no refused write rotated"
    );
    refused(
        store.insert_revoked_access_token(NUL, T0 + 300, T0).await,
        "jti",
    );

    // Failed-login counters (a username straight from the login form).
    let policy = ThrottlePolicy::default();
    let keys = LoginThrottle::new(policy).keys(NUL, Some("192.0.2.1"));
    refused(
        store.begin_login_attempt(&keys, T0, &policy).await,
        "throttle key",
    );
    let odd_username = [ThrottleKey {
        username: Some(NUL.into()),
        ..keys[1].clone()
    }];
    refused(
        store.begin_login_attempt(&odd_username, T0, &policy).await,
        "throttle key",
    );
    refused(
        store.record_login_success(&keys, None).await,
        "throttle key",
    );

    // Nothing of it was stored.
    assert_eq!(store.list_users().await.unwrap().len(), 1);
    assert_eq!(store.list_clients().await.unwrap().len(), 1);
    assert!(store.list_signing_keys().await.unwrap().is_empty());
    assert_eq!(store.list_active_sessions(None).await.unwrap().len(), 1);
    assert!(feed(&store).await.is_empty());
    assert!(
        store
            .list_audit_events(&AuditFilter::default())
            .await
            .unwrap()
            .iter()
            .all(|e| e.kind == AuditKind::LoginSucceeded),
        "only the one login"
    );
}

async fn lookups_and_changes_by_text_with_nul_find_nothing(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;
    let web = stored_client(&store, client("web")).await.id;
    let session = stored_session(&store, &alice, T0).await;
    let (family, _) = stored_family(&store, &session, &web, None, T0).await;

    assert!(store.find_user(NUL).await.unwrap().is_none());
    assert!(
        !store
            .update_user_password(NUL, &alice.password_hash)
            .await
            .unwrap()
    );
    assert!(store.find_session(NUL).await.unwrap().is_none());
    store.touch_session(NUL, T0 + 1).await.unwrap();
    assert!(
        !store
            .end_session(NUL, T0, EndReason::Logout, None)
            .await
            .unwrap()
    );
    assert!(
        store
            .end_sessions_of_user(NUL, T0, EndReason::Logout)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_active_sessions(Some(NUL))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.find_refresh_family(NUL).await.unwrap().is_none());
    assert!(
        !store
            .end_refresh_family(NUL, T0, EndReason::IdleTimeout)
            .await
            .unwrap()
    );
    assert!(!store.delete_signing_key(NUL).await.unwrap());
    assert!(!store.is_access_token_revoked(NUL).await.unwrap());
    assert_eq!(store.clear_login_counters(NUL).await.unwrap(), 0);
    for filter in [
        AuditFilter {
            user_id: Some(NUL.into()),
            ..AuditFilter::default()
        },
        AuditFilter {
            sid: Some(NUL.into()),
            ..AuditFilter::default()
        },
    ] {
        assert!(store.list_audit_events(&filter).await.unwrap().is_empty());
    }
    // The validated newtypes cannot hold NUL at all; what reaches the store through them is
    // therefore always storable. (`Username::parse` and `ClientId::parse` refuse it.)
    assert!(Username::parse(NUL).is_err());
    assert!(ClientId::parse(NUL).is_err());
    assert!(
        store
            .update_client_policy(&web, &ClientPolicy::default())
            .await
            .unwrap()
    );
    // Everything real is untouched.
    assert!(get_session(&store, &session.sid).await.ended_at.is_none());
    assert!(get_family(&store, &family.id).await.ended_at.is_none());
    assert_eq!(store.list_users().await.unwrap().len(), 1);
}

async fn diagnostic_text_with_nul_is_kept_cleaned(store: Arc<dyn Store>) {
    let alice = stored_user(&store, "alice").await;
    let web = stored_client(&store, client_with_logout("web")).await.id;
    let session = stored_session(&store, &alice, T0).await;
    redeemed_code(&store, &session, &web, T0).await;
    store
        .admit_client_session(&session.sid, &alice.id, &web, T0, unlimited())
        .await
        .unwrap();
    assert!(
        store
            .end_session(&session.sid, T0 + 1, EndReason::Logout, None)
            .await
            .unwrap()
    );
    let due = store
        .claim_backchannel_deliveries(T0 + 2, 60, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    store
        .record_backchannel_attempt(
            due[0].id,
            T0 + 2,
            &DeliveryOutcome::Retry {
                retry_at: T0 + 12,
                error: "connection reset \0 by peer".into(),
            },
        )
        .await
        .unwrap();
    let pending = store.list_undelivered_backchannel().await.unwrap();
    assert_eq!(
        pending[0].last_error.as_deref(),
        Some("connection reset \u{FFFD} by peer")
    );
}
