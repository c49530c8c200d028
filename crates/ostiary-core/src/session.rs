//! IdP sessions: what a login creates, identified by the `sid` claim (OIDC Front/Back-Channel
//! Logout §2), and the policy that bounds their life.
//!
//! A session is held by the browser as an opaque cookie (only its hash is stored) and is the
//! parent of the refresh families ([`crate::refresh`]) of the clients that obtained tokens
//! through it. Ending a session ends all of them at once.

use std::fmt;

use crate::clock::UnixTime;
use crate::secret::CredentialHash;

/// Lifetimes and windows that govern sessions and refresh tokens. All values in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionPolicy {
    /// A session not used (no login, authorize or refresh) for this long ends. Default
    /// 604800 (7 days).
    pub idle_timeout: i64,
    /// A session ends this long after login, however active. Default 2592000 (30 days).
    pub absolute_lifetime: i64,
    /// How long after a rotation the previous refresh token may be presented again and get
    /// the same successor (a retry or a second tab, not theft). Default 10; 0: never (any
    /// second use is reuse).
    pub refresh_grace: i64,
    /// How long after a rotation the previous refresh token may still recover its successor
    /// when that successor has never been used: the rotation committed but its response was
    /// lost (a crash, a cut connection), and the client retries with the token it still
    /// holds. See [`crate::refresh`] for why this keeps theft detection. Seconds; unset (the
    /// default) means 86400 (a day) when `refresh_grace` is above 0 and 0 (no recovery)
    /// when it is 0, so that a deployment allowing no replay at all gets none; 0 turns
    /// recovery off.
    pub refresh_recovery: Option<i64>,
    /// Most active sessions a user may have at once; 0 means no limit (the default). 1 is
    /// the one-session-per-user policy.
    pub max_sessions_per_user: u32,
    /// What a login beyond `max_sessions_per_user` does. Default `end_oldest`.
    pub on_session_limit: SessionLimitAction,
}

/// What a login does when the user already has the maximum number of sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionLimitAction {
    /// The new login wins: the oldest sessions end (published and audited as evictions).
    #[default]
    EndOldest,
    /// The new login is refused with a clear message; existing sessions continue.
    RefuseNewLogin,
}

/// One client's overrides of the global [`SessionPolicy`]; every unset field follows the
/// global value. Stored with the client, set by `ostiary client add|set-policy`. All durations
/// in seconds.
///
/// The IdP session is shared by every client the user signs in to, so a client's own limits
/// act on what belongs to that client alone: its *refresh family* in each session (see
/// [`crate::refresh`]) and the sessions in which it obtained tokens.
/// - `idle_timeout`, `absolute_lifetime`: the client's refresh token in a session stops
///   working when it was not refreshed for this long, or this long after the code exchange.
///   Only that family ends; the session and other clients continue. The session's global
///   limits still apply, so these can shorten the client's life, never lengthen it.
/// - `refresh_grace`: replaces the global grace window for this client's refresh tokens.
/// - `refresh_recovery`: replaces the global recovery window (see
///   [`SessionPolicy::refresh_recovery`]); a client that sets `refresh_grace` to 0 and no
///   recovery window gets none.
/// - `require_dpop`: every token request of the client must prove a DPoP key (RFC 9449).
/// - `require_dpop_nonce`: its DPoP proofs must carry a fresh server nonce (RFC 9449 §8).
/// - `max_sessions_per_user`, `on_session_limit`: how many of a user's active sessions may hold
///   tokens of this client at once. Obtaining tokens in one more session either ends the
///   oldest of those sessions (the whole session, since the session is what resource servers
///   revoke: published, sent to back-channel logout and audited as an eviction) or is refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientPolicy {
    /// Seconds without a refresh after which this client's refresh family ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<i64>,
    /// Seconds after the code exchange after which this client's refresh family ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub absolute_lifetime: Option<i64>,
    /// Grace window for this client's refresh tokens, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_grace: Option<i64>,
    /// Recovery window for this client's refresh tokens, in seconds (see
    /// [`SessionPolicy::refresh_recovery`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_recovery: Option<i64>,
    /// Most active sessions of one user holding tokens of this client; 0 means no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_sessions_per_user: Option<u32>,
    /// What obtaining tokens beyond `max_sessions_per_user` does. Default: the global
    /// `on_session_limit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_session_limit: Option<SessionLimitAction>,
    /// Whether this client's token requests must carry a DPoP proof (RFC 9449 §5): its
    /// tokens are then always bound to a key, and a request without a proof is refused
    /// (`invalid_dpop_proof`). Default: no (a proof is optional).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_dpop: Option<bool>,
    /// Whether this client's DPoP proofs must carry a fresh nonce from this IdP (RFC 9449
    /// §8): a proof without one is answered `use_dpop_nonce` with the nonce to use in the
    /// `DPoP-Nonce` header. Default: no. It does not make proofs required (`require_dpop`
    /// does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_dpop_nonce: Option<bool>,
}

impl ClientPolicy {
    /// Whether no field is set (the client follows the global policy entirely).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Rejects negative durations.
    pub fn validate(&self) -> Result<(), &'static str> {
        let durations = [
            self.idle_timeout,
            self.absolute_lifetime,
            self.refresh_grace,
            self.refresh_recovery,
        ];
        if durations.into_iter().flatten().any(|d| d < 0) {
            return Err("durations must be zero or more seconds");
        }
        if self.idle_timeout == Some(0) || self.absolute_lifetime == Some(0) {
            return Err("idle_timeout and absolute_lifetime must be at least 1 second");
        }
        Ok(())
    }

    /// The grace window that applies to this client, in seconds.
    pub fn refresh_grace(&self, global: &SessionPolicy) -> i64 {
        self.refresh_grace.unwrap_or(global.refresh_grace)
    }

    /// The recovery window that applies to this client, in seconds (0: none): its own, else
    /// none if it allows no grace window, else the global one.
    pub fn refresh_recovery(&self, global: &SessionPolicy) -> i64 {
        match (self.refresh_recovery, self.refresh_grace) {
            (Some(own), _) => own,
            (None, Some(0)) => 0,
            (None, _) => global.refresh_recovery(),
        }
    }

    /// The session limit that applies to this client: (max, action). A max of 0 is no limit.
    pub fn session_limit(&self, global: &SessionPolicy) -> (u32, SessionLimitAction) {
        (
            self.max_sessions_per_user.unwrap_or(0),
            self.on_session_limit.unwrap_or(global.on_session_limit),
        )
    }

    /// When a refresh family created at `created_at` and last rotated at `rotated_at` ends
    /// under this policy, and why: `None` if this client sets no family limits.
    pub fn family_expiry(
        &self,
        created_at: UnixTime,
        rotated_at: UnixTime,
    ) -> Option<(UnixTime, EndReason)> {
        let absolute = self
            .absolute_lifetime
            .map(|a| (created_at.saturating_add(a), EndReason::AbsoluteLifetime));
        let idle = self
            .idle_timeout
            .map(|i| (rotated_at.saturating_add(i), EndReason::IdleTimeout));
        match (absolute, idle) {
            (Some(a), Some(i)) => Some(if a.0 <= i.0 { a } else { i }),
            (a, i) => a.or(i),
        }
    }
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_timeout: 7 * 24 * 3600,
            absolute_lifetime: 30 * 24 * 3600,
            refresh_grace: 10,
            refresh_recovery: None,
            max_sessions_per_user: 0,
            on_session_limit: SessionLimitAction::EndOldest,
        }
    }
}

/// Default recovery window when the grace window is above 0, seconds (a day).
pub const DEFAULT_REFRESH_RECOVERY: i64 = 24 * 3600;

impl SessionPolicy {
    /// The recovery window in seconds, with its default applied (see
    /// [`SessionPolicy::refresh_recovery`]).
    pub fn refresh_recovery(&self) -> i64 {
        match self.refresh_recovery {
            Some(seconds) => seconds,
            None if self.refresh_grace > 0 => DEFAULT_REFRESH_RECOVERY,
            None => 0,
        }
    }
}

/// Why a session (or a refresh family) ended. The stored and audited form is
/// [`EndReason::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The user logged out at the IdP, or a client sent them to the end-session endpoint.
    Logout,
    /// A refresh token older than the current one was presented outside the grace window.
    RefreshTokenReuse,
    /// An authorization code was presented a second time, by its client with its PKCE
    /// verifier: someone else redeemed it first, and everything it issued is revoked.
    AuthorizationCodeReplay,
    /// A client revoked the refresh token (RFC 7009).
    Revoked,
    /// Not used for longer than the idle timeout.
    IdleTimeout,
    /// Older than the absolute lifetime.
    AbsoluteLifetime,
    /// The user's account was disabled.
    UserDisabled,
    /// A new login went beyond the user's session limit, and this was the oldest session.
    PolicyEviction,
    /// The user's password was changed: every session signed in with the old one ends.
    PasswordChanged,
    /// An administrator ended the session.
    AdminRevoked,
    /// An emergency rotation of the signing keys ended every session (`keys rotate
    /// --immediately --end-sessions`).
    SigningKeyCompromised,
}

impl EndReason {
    /// Stable snake_case name, for storage and audit.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::RefreshTokenReuse => "refresh_token_reuse",
            Self::AuthorizationCodeReplay => "authorization_code_replay",
            Self::Revoked => "revoked",
            Self::IdleTimeout => "idle_timeout",
            Self::AbsoluteLifetime => "absolute_lifetime",
            Self::UserDisabled => "user_disabled",
            Self::PolicyEviction => "policy_eviction",
            Self::PasswordChanged => "password_changed",
            Self::AdminRevoked => "admin_revoked",
            Self::SigningKeyCompromised => "signing_key_compromised",
        }
    }
}

impl EndReason {
    /// Who ends a session for this reason, as the audit log's `actor`: `user`, `client`,
    /// `admin` or `system`.
    pub fn actor(self) -> &'static str {
        match self {
            Self::Logout => "user",
            Self::Revoked | Self::AuthorizationCodeReplay => "client",
            Self::UserDisabled
            | Self::AdminRevoked
            | Self::PasswordChanged
            | Self::SigningKeyCompromised => "admin",
            Self::RefreshTokenReuse
            | Self::IdleTimeout
            | Self::AbsoluteLifetime
            | Self::PolicyEviction => "system",
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An IdP session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The session id: public, random, carried as `sid` in tokens.
    pub sid: String,
    /// The user who logged in.
    pub user_id: String,
    /// Hash of the browser-session cookie value, if the session was created by a browser login.
    pub cookie_hash: Option<CredentialHash>,
    /// When the user authenticated (`auth_time`, Unix seconds).
    pub auth_time: UnixTime,
    /// When the session was created (Unix seconds).
    pub created_at: UnixTime,
    /// Last login, authorize or refresh through this session (Unix seconds).
    pub last_used_at: UnixTime,
    /// When it ended, if it did.
    pub ended_at: Option<UnixTime>,
    /// Why it ended (an [`EndReason::as_str`]).
    pub end_reason: Option<String>,
    /// `User-Agent` of the login request, truncated, for the user's session list.
    pub user_agent: Option<String>,
    /// Client IP of the login request.
    pub ip: Option<String>,
}

/// Whether a session can be used at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Usable.
    Active,
    /// Ended explicitly.
    Ended,
    /// Ran out of time; the reason says which limit.
    Expired(EndReason),
}

impl Session {
    /// The state at `now` under `policy`.
    pub fn state_at(&self, now: UnixTime, policy: &SessionPolicy) -> SessionState {
        if self.ended_at.is_some() {
            SessionState::Ended
        } else if now >= self.created_at.saturating_add(policy.absolute_lifetime) {
            SessionState::Expired(EndReason::AbsoluteLifetime)
        } else if now >= self.last_used_at.saturating_add(policy.idle_timeout) {
            SessionState::Expired(EndReason::IdleTimeout)
        } else {
            SessionState::Active
        }
    }

    /// When the session will end at the latest if not used again (Unix seconds).
    pub fn expires_at(&self, policy: &SessionPolicy) -> UnixTime {
        self.created_at
            .saturating_add(policy.absolute_lifetime)
            .min(self.last_used_at.saturating_add(policy.idle_timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(created_at: UnixTime) -> Session {
        Session {
            sid: "sid".into(),
            user_id: "u".into(),
            cookie_hash: None,
            auth_time: created_at,
            created_at,
            last_used_at: created_at,
            ended_at: None,
            end_reason: None,
            user_agent: None,
            ip: None,
        }
    }

    #[test]
    fn idle_and_absolute_limits_end_a_session() {
        let policy = SessionPolicy {
            idle_timeout: 100,
            absolute_lifetime: 1000,
            refresh_grace: 5,
            ..SessionPolicy::default()
        };
        let mut s = session(0);
        assert_eq!(s.state_at(99, &policy), SessionState::Active);
        assert_eq!(
            s.state_at(100, &policy),
            SessionState::Expired(EndReason::IdleTimeout)
        );
        s.last_used_at = 950;
        assert_eq!(s.state_at(999, &policy), SessionState::Active);
        assert_eq!(
            s.state_at(1000, &policy),
            SessionState::Expired(EndReason::AbsoluteLifetime)
        );
        s.ended_at = Some(10);
        assert_eq!(s.state_at(11, &policy), SessionState::Ended);
    }
}
