//! The audit log: an append-only record of every security event.
//!
//! Each event has a time, a kind, and whatever is known of the actor, user, session, client,
//! IP and user agent, plus kind-specific details (for a detected refresh-token reuse: which
//! generation was replayed and how long after its rotation). Never a password, credential,
//! token or key: the constructors take only identifiers.
//!
//! An [`AuditObserver`] given to [`crate::Idp::with_observer`] hears of every event once it is
//! in the log (the server counts them for its metrics).

use serde::Serialize;
use serde_json::{Value, json};

use crate::clock::UnixTime;
use crate::session::EndReason;

/// What happened. The stored form is [`AuditKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A user signed in; a session was created.
    LoginSucceeded,
    /// A sign-in was refused; `details.reason` says which category.
    LoginFailed,
    /// A refresh token was rotated.
    RefreshRotated,
    /// The previous refresh token came back within the grace window: the same successor was
    /// handed out again.
    RefreshReplayedWithinGrace,
    /// A refresh token that must not be used any more came back: the session was ended.
    RefreshTokenReuseDetected,
    /// An authorization code was presented a second time by its client. `request_matched_code`:
    /// whether the request matched the code (PKCE verifier, redirect URI, resource, DPoP key),
    /// in which case its session was ended in the same transaction.
    AuthorizationCodeReplayed,
    /// A session ended; `details.reason` says why.
    SessionEnded,
    /// A new login went beyond the session limit and this (oldest) session was ended;
    /// `details.evicted_by` is the new session.
    SessionEvicted,
    /// A client's refresh family ended under the client's own idle or absolute limit
    /// (`details.reason`); the session goes on.
    RefreshFamilyExpired,
    /// An access token was revoked (RFC 7009).
    AccessTokenRevoked,
    /// A back-channel logout token reached a client.
    BackchannelDelivered,
    /// A back-channel logout attempt failed (`details`: error, retry time or `gave_up`).
    BackchannelFailed,
    /// An administrator created a user.
    UserCreated,
    /// An administrator disabled or re-enabled a user.
    UserDisabledChanged,
    /// A user's password was changed (all their sessions ended).
    PasswordChanged,
    /// An administrator registered a client.
    ClientCreated,
    /// An administrator changed a client's policy overrides (`details.policy`).
    ClientPolicyChanged,
    /// A signing key was generated (`details`: kid, alg, activates_at, reason: first_start,
    /// scheduled, manual or immediate).
    SigningKeyGenerated,
    /// A retired signing key passed its retention and was deleted (`details`: kid, alg).
    SigningKeyRemoved,
    /// The previous refresh token came back after the grace window while its successor had
    /// never been used (a lost response): the same successor was handed out again, marked
    /// reissued (see `refresh.rs`).
    RefreshRecovered,
    /// A refresh token or authorization code was presented by a client it was not issued to
    /// (`details.grant`, `details.presented_by`); nothing was changed for its holder.
    GrantPresentedByOtherClient,
    /// A grant bound to a DPoP key (a refresh family, or a code requested with `dpop_jkt`)
    /// was presented without a proof by that key and refused; nothing changed for its holder
    /// (`details.grant`; `details.reason`: `no_proof` or `other_key`). Whoever sent it holds
    /// the grant but not the key: a copy.
    DpopKeyNotProved,
    /// Failed or refused sign-ins counted together once the failed-login throttle engaged,
    /// instead of one event each (`details`: counter, refused, failed, since).
    LoginThrottled,
    /// An administrator cleared a user's failed-login counters (`ostiary user unlock`, the
    /// admin API, or a password change).
    LoginCountersCleared,
    /// A signing key was withdrawn at once by an emergency rotation (`details`: kid, alg):
    /// no longer published, no longer accepted, announced on the revocation feed.
    SigningKeyWithdrawn,
    /// Signing keys stored in the clear were sealed under the key-encryption key
    /// (`details.kids`).
    SigningKeysSealed,
    /// The retention job deleted expired records (`details`: what, how many, cut-off times).
    RetentionApplied,
}

impl AuditKind {
    /// Every kind, for validating filters.
    pub const ALL: [AuditKind; 27] = [
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::RefreshRotated,
        Self::RefreshReplayedWithinGrace,
        Self::RefreshTokenReuseDetected,
        Self::AuthorizationCodeReplayed,
        Self::SessionEnded,
        Self::SessionEvicted,
        Self::RefreshFamilyExpired,
        Self::AccessTokenRevoked,
        Self::BackchannelDelivered,
        Self::BackchannelFailed,
        Self::UserCreated,
        Self::UserDisabledChanged,
        Self::PasswordChanged,
        Self::ClientCreated,
        Self::ClientPolicyChanged,
        Self::SigningKeyGenerated,
        Self::SigningKeyRemoved,
        Self::RefreshRecovered,
        Self::GrantPresentedByOtherClient,
        Self::DpopKeyNotProved,
        Self::LoginThrottled,
        Self::LoginCountersCleared,
        Self::SigningKeyWithdrawn,
        Self::SigningKeysSealed,
        Self::RetentionApplied,
    ];

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::RefreshRotated => "refresh_rotated",
            Self::RefreshReplayedWithinGrace => "refresh_replayed_within_grace",
            Self::RefreshTokenReuseDetected => "refresh_token_reuse_detected",
            Self::AuthorizationCodeReplayed => "authorization_code_replayed",
            Self::SessionEnded => "session_ended",
            Self::SessionEvicted => "session_evicted",
            Self::RefreshFamilyExpired => "refresh_family_expired",
            Self::AccessTokenRevoked => "access_token_revoked",
            Self::BackchannelDelivered => "backchannel_delivered",
            Self::BackchannelFailed => "backchannel_failed",
            Self::UserCreated => "user_created",
            Self::UserDisabledChanged => "user_disabled_changed",
            Self::PasswordChanged => "password_changed",
            Self::ClientCreated => "client_created",
            Self::ClientPolicyChanged => "client_policy_changed",
            Self::SigningKeyGenerated => "signing_key_generated",
            Self::SigningKeyRemoved => "signing_key_removed",
            Self::RefreshRecovered => "refresh_recovered",
            Self::GrantPresentedByOtherClient => "grant_presented_by_other_client",
            Self::DpopKeyNotProved => "dpop_key_not_proved",
            Self::LoginThrottled => "login_throttled",
            Self::LoginCountersCleared => "login_counters_cleared",
            Self::SigningKeyWithdrawn => "signing_key_withdrawn",
            Self::SigningKeysSealed => "signing_keys_sealed",
            Self::RetentionApplied => "retention_applied",
        }
    }

    /// Parses a stored or user-given name.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    /// Position in the log (assigned by the store; 0 before it is stored).
    pub id: i64,
    /// When (Unix seconds).
    pub at: UnixTime,
    /// What happened.
    pub kind: AuditKind,
    /// Who did it: `user`, `client:ID`, `admin` (the CLI), `system` (expiry, detection).
    pub actor: String,
    /// The user concerned.
    pub user_id: Option<String>,
    /// The session concerned.
    pub sid: Option<String>,
    /// The client concerned.
    pub client_id: Option<String>,
    /// Client IP address, where known.
    pub ip: Option<String>,
    /// `User-Agent`, where known.
    pub user_agent: Option<String>,
    /// Kind-specific facts (JSON object).
    pub details: Value,
}

impl AuditEvent {
    /// An event of `kind` by `actor` at `at`; add what is known with the `with_*` methods.
    pub fn new(at: UnixTime, kind: AuditKind, actor: impl Into<String>) -> Self {
        Self {
            id: 0,
            at,
            kind,
            actor: actor.into(),
            user_id: None,
            sid: None,
            client_id: None,
            ip: None,
            user_agent: None,
            details: json!({}),
        }
    }

    /// `session_ended`: the session `sid` of `user_id` ended at `at` for `reason`. Written by
    /// the store in the transaction that ends the session, whichever path ended it.
    pub fn session_ended(at: UnixTime, sid: &str, user_id: &str, reason: EndReason) -> Self {
        Self::new(at, AuditKind::SessionEnded, reason.actor())
            .user(user_id)
            .session(sid)
            .details(json!({"reason": reason.as_str()}))
    }

    /// `session_evicted`: a session limit ended `sid` to admit the session `by_sid`. `details`
    /// names the limit (`max_sessions_per_user`, and `client_id` for a client's own limit).
    pub fn session_evicted(
        at: UnixTime,
        sid: &str,
        user_id: &str,
        by_sid: &str,
        mut details: Value,
    ) -> Self {
        details["evicted_by"] = json!(by_sid);
        let mut event = Self::new(at, AuditKind::SessionEvicted, "system")
            .user(user_id)
            .session(sid);
        // A client's own limit names the client, also as the event's client.
        if let Some(client_id) = details["client_id"].as_str() {
            event = event.client(client_id);
        }
        event.details(details)
    }

    /// The user concerned.
    pub fn user(mut self, user_id: &str) -> Self {
        self.user_id = Some(user_id.to_owned());
        self
    }

    /// The session concerned.
    pub fn session(mut self, sid: &str) -> Self {
        self.sid = Some(sid.to_owned());
        self
    }

    /// The client concerned.
    pub fn client(mut self, client_id: &str) -> Self {
        self.client_id = Some(client_id.to_owned());
        self
    }

    /// Where the request came from. Both are cut (IP to 64, user agent to 256 characters), so
    /// that a request cannot write large records.
    pub fn origin(mut self, ip: Option<&str>, user_agent: Option<&str>) -> Self {
        self.ip = ip.map(|ip| ip.chars().take(64).collect());
        self.user_agent = user_agent.map(|ua| ua.chars().take(256).collect());
        self
    }

    /// Kind-specific facts.
    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// The event's category, a short snake_case word from a fixed vocabulary of the code
    /// (never an identifier): `details.reason` where the kind has one (a login failure's
    /// `wrong_credentials`, a session ending's [`EndReason::as_str`], …), and `retry` or
    /// `gave_up` for a failed back-channel logout.
    pub fn category(&self) -> Option<&str> {
        match self.kind {
            AuditKind::BackchannelFailed if self.details["gave_up"] == json!(true) => {
                Some("gave_up")
            }
            AuditKind::BackchannelFailed => Some("retry"),
            _ => self.details["reason"].as_str(),
        }
    }
}

/// Hears of every audit event once it is in the log: after the store call that appended it
/// returned, whether the event was written by [`crate::Idp`] itself or by the store inside
/// the transaction of the change it records (a login, a rotation, a session ending). Each
/// appended event is observed exactly once, and an event that could not be written is not
/// observed. Events appended by other processes sharing the database (other instances, the
/// CLI) are not observed here.
///
/// Only the kind and the [category](AuditEvent::category) are passed, both from bounded
/// vocabularies, so that an observer can label metrics with them; an observer must not block.
pub trait AuditObserver: Send + Sync + 'static {
    /// An event of `kind` with `category` was appended to the audit log.
    fn observe(&self, kind: AuditKind, category: Option<&str>);

    /// An event of `kind` with `category` happened but was not appended on its own: it was
    /// counted into an aggregate that the log records as one event (failed sign-ins once the
    /// throttle engaged, see [`crate::throttle`]). Metrics count it as if it had been; the
    /// default does nothing.
    fn observe_aggregated(&self, kind: AuditKind, category: Option<&str>) {
        let _ = (kind, category);
    }
}

/// The observer that does nothing (the default of [`crate::Idp::new`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl AuditObserver for NoObserver {
    fn observe(&self, _kind: AuditKind, _category: Option<&str>) {}
}

/// Which events to read. All fields are optional and combine with AND.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this user's events.
    pub user_id: Option<String>,
    /// Only this session's events.
    pub sid: Option<String>,
    /// Only events of this kind.
    pub kind: Option<AuditKind>,
    /// Only events at or after this time (Unix seconds).
    pub since: Option<UnixTime>,
    /// Only events before this time (Unix seconds).
    pub until: Option<UnixTime>,
    /// At most this many, newest last (default 1000).
    pub limit: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_origins_are_cut_so_a_request_cannot_write_large_records() {
        let huge = "x".repeat(400_000);
        let event =
            AuditEvent::new(0, AuditKind::LoginFailed, "user").origin(Some(&huge), Some(&huge));
        assert_eq!(event.ip.unwrap().len(), 64);
        assert_eq!(event.user_agent.unwrap().len(), 256);
    }

    #[test]
    fn categories_come_from_the_reason_or_the_back_channel_outcome() {
        let failed = AuditEvent::new(0, AuditKind::LoginFailed, "user")
            .details(json!({"reason": "wrong_credentials", "known_user": true}));
        assert_eq!(failed.category(), Some("wrong_credentials"));
        let ended = AuditEvent::session_ended(0, "sid", "user", EndReason::Logout);
        assert_eq!(ended.category(), Some("logout"));
        let retry = AuditEvent::new(0, AuditKind::BackchannelFailed, "system")
            .details(json!({"attempt": 1, "retry_at": 10, "error": "refused"}));
        assert_eq!(retry.category(), Some("retry"));
        let gave_up = AuditEvent::new(0, AuditKind::BackchannelFailed, "system")
            .details(json!({"attempt": 8, "gave_up": true, "error": "refused"}));
        assert_eq!(gave_up.category(), Some("gave_up"));
        assert_eq!(
            AuditEvent::new(0, AuditKind::RefreshRotated, "client:x").category(),
            None
        );
    }

    #[test]
    fn every_kind_parses_back_from_its_name() {
        for kind in AuditKind::ALL {
            assert_eq!(AuditKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(AuditKind::parse("nope"), None);
    }
}
