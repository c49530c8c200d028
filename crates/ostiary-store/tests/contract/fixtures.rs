//! Test data built from the domain types, the way `Idp` builds it.

use std::sync::Arc;

use ostiary_core::Store;
use ostiary_core::audit::{AuditEvent, AuditFilter, AuditKind};
use ostiary_core::client::{Client, ClientId, ClientKind, RedirectUri, WebOrigin};
use ostiary_core::clock::UnixTime;
use ostiary_core::code::{AuthorizationCode, CodeChallenge, CodeConsumption};
use ostiary_core::refresh::RefreshFamily;
use ostiary_core::scope::Scope;
use ostiary_core::secret::{Credential, CredentialHash, random_id};
use ostiary_core::session::{ClientPolicy, Session};
use ostiary_core::store::{Rotation, SessionAdmission, SessionLimit};
use ostiary_core::user::{PasswordHashString, User, Username};

/// A fixed start of time (2026-01-01T00:00:00Z).
pub const T0: UnixTime = 1_767_225_600;
pub const REDIRECT_URI: &str = "http://127.0.0.1:9999/callback";
pub const API: &str = "https://api.ostiary.test";

pub fn user(username: &str) -> User {
    User {
        id: random_id(),
        username: Username::parse(username).expect("username"),
        password_hash: PasswordHashString::from_stored(format!(
            "$argon2id$v=19$m=19456,t=2,p=1${}",
            random_id()
        )),
        disabled: false,
        created_at: T0,
    }
}

/// A public client without a back-channel logout endpoint.
pub fn client(id: &str) -> Client {
    Client {
        id: client_id(id),
        kind: ClientKind::Public,
        secret_hash: None,
        redirect_uris: vec![RedirectUri::parse(REDIRECT_URI).expect("redirect URI")],
        post_logout_redirect_uris: Vec::new(),
        allowed_resources: vec![API.to_owned()],
        extra_scopes: Vec::new(),
        web_origins: Vec::new(),
        backchannel_logout_uri: None,
        policy: ClientPolicy::default(),
        created_at: T0,
    }
}

/// A client with a back-channel logout endpoint.
pub fn client_with_logout(id: &str) -> Client {
    Client {
        backchannel_logout_uri: Some(logout_uri(id)),
        ..client(id)
    }
}

pub fn logout_uri(client: &str) -> RedirectUri {
    RedirectUri::parse(&format!("https://{client}.ostiary.test/backchannel")).expect("URI")
}

pub fn client_id(id: &str) -> ClientId {
    ClientId::parse(id).expect("client id")
}

/// A session of `user` created (and last used) at `at`.
pub fn session(user: &User, at: UnixTime) -> Session {
    Session {
        sid: random_id(),
        user_id: user.id.clone(),
        cookie_hash: Some(Credential::generate().hash()),
        auth_time: at,
        created_at: at,
        last_used_at: at,
        ended_at: None,
        end_reason: None,
        user_agent: Some("Mozilla/5.0 (contract test)".into()),
        ip: Some("192.0.2.1".into()),
    }
}

/// The `login_succeeded` event that goes with a new session.
pub fn login_event(session: &Session) -> AuditEvent {
    AuditEvent::new(session.created_at, AuditKind::LoginSucceeded, "user")
        .user(&session.user_id)
        .session(&session.sid)
        .origin(session.ip.as_deref(), session.user_agent.as_deref())
}

/// No session limit.
pub fn unlimited() -> SessionLimit {
    SessionLimit {
        max: 0,
        evict_oldest: true,
        idle_since: i64::MIN,
        absolute_since: i64::MIN,
    }
}

/// At most `max` sessions, counting every session that has not ended.
pub fn limit(max: u32, evict_oldest: bool) -> SessionLimit {
    SessionLimit {
        max,
        evict_oldest,
        idle_since: i64::MIN,
        absolute_since: i64::MIN,
    }
}

/// Stores a session without a limit; panics unless it is admitted.
pub async fn insert_session(store: &Arc<dyn Store>, session: &Session) {
    let admission = store
        .insert_session(session, unlimited(), &login_event(session))
        .await
        .expect("insert session");
    assert_eq!(
        admission,
        SessionAdmission::Admitted {
            evicted: Vec::new()
        }
    );
}

/// Stores a user and returns it.
pub async fn stored_user(store: &Arc<dyn Store>, username: &str) -> User {
    let user = user(username);
    store.insert_user(&user).await.expect("insert user");
    user
}

/// Stores a client and returns it.
pub async fn stored_client(store: &Arc<dyn Store>, client: Client) -> Client {
    store.insert_client(&client).await.expect("insert client");
    client
}

/// Stores a new session of `user` created at `at` and returns it.
pub async fn stored_session(store: &Arc<dyn Store>, user: &User, at: UnixTime) -> Session {
    let session = session(user, at);
    insert_session(store, &session).await;
    session
}

/// An authorization code for `client` in `session`, issued at `at`.
pub fn code(session: &Session, client: &ClientId, at: UnixTime) -> AuthorizationCode {
    AuthorizationCode {
        code_hash: Credential::generate().hash(),
        client_id: client.clone(),
        redirect_uri: REDIRECT_URI.to_owned(),
        sid: session.sid.clone(),
        user_id: session.user_id.clone(),
        scope: Scope::parse("openid profile offline_access").expect("scope"),
        resource: API.to_owned(),
        code_challenge: CodeChallenge::from_stored(Credential::generate().hash().as_str().into()),
        nonce: Some(random_id()),
        dpop_jkt: Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs".into()),
        auth_time: session.auth_time,
        created_at: at,
        expires_at: at + 60,
        used_at: None,
    }
}

/// Stores a code for `client` in `session` and redeems it, as a code exchange does.
pub async fn redeemed_code(
    store: &Arc<dyn Store>,
    session: &Session,
    client: &ClientId,
    at: UnixTime,
) -> AuthorizationCode {
    let code = code(session, client, at);
    store
        .insert_authorization_code(&code)
        .await
        .expect("insert code");
    let consumed = store
        .consume_authorization_code(&code.code_hash, client, at)
        .await
        .expect("consume code");
    assert!(matches!(consumed, CodeConsumption::First(_)));
    code
}

/// A new refresh family (generation 0) of `client` in `session`.
pub fn family(
    session: &Session,
    client: &ClientId,
    code_hash: Option<&CredentialHash>,
    at: UnixTime,
) -> RefreshFamily {
    RefreshFamily {
        id: random_id(),
        sid: session.sid.clone(),
        client_id: client.clone(),
        user_id: session.user_id.clone(),
        scope: Scope::parse("openid offline_access").expect("scope"),
        resource: API.to_owned(),
        generation: 0,
        rotated_at: at,
        sealed_successor: None,
        created_at: at,
        ended_at: None,
        end_reason: None,
        code_hash: code_hash.cloned(),
        last_use_ip: Some("192.0.2.1".into()),
        last_use_user_agent: Some("Mozilla/5.0 (contract test)".into()),
        // RFC 7638 §3.1's example thumbprint: the column round-trips.
        dpop_jkt: Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs".into()),
        current_reissued: false,
        previous_reissued: false,
    }
}

/// Stores a new family of `client` in `session`; returns it and its first token's hash.
pub async fn stored_family(
    store: &Arc<dyn Store>,
    session: &Session,
    client: &ClientId,
    code_hash: Option<&CredentialHash>,
    at: UnixTime,
) -> (RefreshFamily, CredentialHash) {
    let family = family(session, client, code_hash, at);
    let first = Credential::generate().hash();
    store
        .insert_refresh_family(&family, &first)
        .await
        .expect("insert family");
    (family, first)
}

/// A rotation of `family` from `generation`, at `now`, with a fresh successor.
pub fn rotation(family: &RefreshFamily, generation: i64, now: UnixTime) -> Rotation {
    Rotation {
        family_id: family.id.clone(),
        expected_generation: generation,
        new_token_hash: Credential::generate().hash(),
        sealed_successor: vec![0, 1, 2, 0xfe, 0xff, generation as u8],
        now,
        ip: Some("198.51.100.7".into()),
        user_agent: Some("curl/8 (rotation)".into()),
        audit: AuditEvent::new(
            now,
            AuditKind::RefreshRotated,
            format!("client:{}", family.client_id),
        )
        .user(&family.user_id)
        .session(&family.sid)
        .client(family.client_id.as_str())
        .details(serde_json::json!({"family": family.id, "generation": generation + 1})),
        dpop_proof: None,
    }
}

/// Audit events of one kind (all of them, oldest first).
pub async fn events(store: &Arc<dyn Store>, kind: AuditKind) -> Vec<AuditEvent> {
    store
        .list_audit_events(&AuditFilter {
            kind: Some(kind),
            ..AuditFilter::default()
        })
        .await
        .expect("list audit events")
}

/// The whole revocation feed, in order.
pub async fn feed(store: &Arc<dyn Store>) -> Vec<ostiary_core::store::RevocationEntry> {
    store
        .list_revocations(0, i64::MIN, u32::MAX)
        .await
        .expect("list revocations")
}

/// The session, which must exist.
pub async fn get_session(store: &Arc<dyn Store>, sid: &str) -> Session {
    store
        .find_session(sid)
        .await
        .expect("find session")
        .expect("the session exists")
}

/// The family, which must exist.
pub async fn get_family(store: &Arc<dyn Store>, id: &str) -> RefreshFamily {
    store
        .find_refresh_family(id)
        .await
        .expect("find family")
        .expect("the family exists")
}

/// Every field of a session, comparable.
pub type SessionView = (
    String,
    String,
    Option<String>,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
);

pub fn session_view(s: &Session) -> SessionView {
    (
        s.sid.clone(),
        s.user_id.clone(),
        s.cookie_hash.as_ref().map(|h| h.as_str().to_owned()),
        s.auth_time,
        s.created_at,
        s.last_used_at,
        s.ended_at,
        s.end_reason.clone(),
        s.user_agent.clone(),
        s.ip.clone(),
    )
}

/// Every field of a family, as text (comparable).
pub fn family_view(f: &RefreshFamily) -> String {
    format!(
        "{} {} {} {} {} {} {} {} {:?} {} {:?} {:?} {:?} {:?} {:?}",
        f.id,
        f.sid,
        f.client_id,
        f.user_id,
        f.scope,
        f.resource,
        f.generation,
        f.rotated_at,
        f.sealed_successor,
        f.created_at,
        f.ended_at,
        f.end_reason,
        f.code_hash.as_ref().map(CredentialHash::as_str),
        f.last_use_ip,
        f.last_use_user_agent,
    )
}

/// Every field of a code, as text (comparable).
pub fn code_view(c: &AuthorizationCode) -> String {
    format!(
        "{} {} {} {} {} {} {} {} {:?} {} {} {}",
        c.code_hash.as_str(),
        c.client_id,
        c.redirect_uri,
        c.sid,
        c.user_id,
        c.scope,
        c.resource,
        c.code_challenge.as_str(),
        c.nonce,
        c.auth_time,
        c.created_at,
        c.expires_at,
    )
}

/// Every field of a client, as text (comparable).
pub fn client_view(c: &Client) -> String {
    let origins: Vec<&str> = c.web_origins.iter().map(WebOrigin::as_str).collect();
    format!(
        "{} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {}",
        c.id,
        c.kind,
        c.secret_hash.as_ref().map(CredentialHash::as_str),
        c.redirect_uris,
        c.post_logout_redirect_uris,
        c.allowed_resources,
        c.extra_scopes,
        origins,
        c.backchannel_logout_uri,
        c.policy,
        c.created_at,
    )
}

/// Every field of a user, as text (comparable).
pub fn user_view(u: &User) -> String {
    format!(
        "{} {} {} {} {}",
        u.id,
        u.username,
        u.password_hash.as_str(),
        u.disabled,
        u.created_at
    )
}
