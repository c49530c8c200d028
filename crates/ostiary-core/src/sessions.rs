//! IdP sessions: listing and ending them (every ending is one store call that publishes it on the
//! feed and queues back-channel logouts), and a client's admission into a session under its session
//! limit.

use crate::audit::{AuditEvent, AuditKind};
use crate::client::Client;
use crate::clock::UnixTime;
use crate::session::{EndReason, Session, SessionLimitAction, SessionState};
use crate::store::{SessionAdmission, SessionLimit};
use crate::user::User;
use serde_json::json;

use crate::Idp;
use crate::idp::{EndWhich, IdpError, LoginContext};

impl Idp {
    /// The sessions that are active now, of one user or of everyone, newest first, with the
    /// clients holding refresh tokens in each. Sessions past their idle or absolute lifetime
    /// are left out (and ended).
    pub async fn active_sessions(
        &self,
        user_id: Option<&str>,
    ) -> Result<Vec<(Session, Vec<String>)>, IdpError> {
        let now = self.now();
        let mut active = Vec::new();
        for (session, clients) in self.store.list_active_sessions(user_id).await? {
            match session.state_at(now, &self.config.session) {
                SessionState::Active => active.push((session, clients)),
                SessionState::Ended => {}
                SessionState::Expired(reason) => {
                    self.end_session(&session.sid, reason).await?;
                }
            }
        }
        Ok(active)
    }

    /// Ends the sessions of `user_id` that `which` selects (the user's own choice on the
    /// sessions page, or an administrator's); returns the ended `sid`s. A `sid` of another user
    /// ends nothing.
    pub async fn end_sessions(
        &self,
        user_id: &str,
        which: EndWhich<'_>,
        reason: EndReason,
    ) -> Result<Vec<String>, IdpError> {
        let mut ended = Vec::new();
        for (session, _) in self.store.list_active_sessions(Some(user_id)).await? {
            let selected = match which {
                EndWhich::One(sid) => session.sid == sid,
                EndWhich::AllBut(current) => session.sid != current,
                EndWhich::All => true,
            };
            if selected && self.end_session(&session.sid, reason).await? {
                ended.push(session.sid);
            }
        }
        Ok(ended)
    }

    /// Wakes the revocation stream and the back-channel worker after `count` sessions ended.
    pub(crate) fn published_endings(&self, count: usize) {
        if count > 0 {
            self.revocations.notify_waiters();
        }
    }

    /// Records that `client` obtains tokens in `session`, within the client's own limit on
    /// sessions per user (see [`ClientPolicy`]), in one store transaction: the oldest other
    /// sessions holding its tokens end, or this grant is refused.
    pub(crate) async fn admit_client_session(
        &self,
        session: &Session,
        user: &User,
        client: &Client,
        caller: &LoginContext,
        now: UnixTime,
    ) -> Result<(), IdpError> {
        let global = &self.config.session;
        let (max, action) = client.policy.session_limit(global);
        let limit = SessionLimit {
            max,
            evict_oldest: action == SessionLimitAction::EndOldest,
            idle_since: now - global.idle_timeout,
            absolute_since: now - global.absolute_lifetime,
        };
        let admission = self
            .store
            .admit_client_session(&session.sid, &user.id, &client.id, now, limit)
            .await?;
        match admission {
            SessionAdmission::Admitted { evicted } => {
                self.observed_evictions(evicted.len());
                self.published_endings(evicted.len());
                Ok(())
            }
            SessionAdmission::Refused => {
                self.audit(
                    AuditEvent::new(now, AuditKind::LoginFailed, "user")
                        .user(&user.id)
                        .session(&session.sid)
                        .client(client.id.as_str())
                        .origin(caller.ip.as_deref(), caller.user_agent.as_deref())
                        .details(
                            json!({"reason": "client_session_limit", "max_sessions_per_user": max}),
                        ),
                )
                .await;
                Err(IdpError::ClientSessionLimit(max))
            }
        }
    }

    /// The latest time tokens of `client` in `session` can be refreshed until: the session's
    /// absolute lifetime, or the client's own for a family created at `family_created_at`.
    pub(crate) fn grant_expires_at(
        &self,
        session: &Session,
        client: &Client,
        family_created_at: UnixTime,
    ) -> UnixTime {
        let session_end = session.created_at + self.config.session.absolute_lifetime;
        match client.policy.absolute_lifetime {
            Some(lifetime) => session_end.min(family_created_at.saturating_add(lifetime)),
            None => session_end,
        }
    }

    /// Ends a session and all refresh families in it (logout). `false` if it had already ended.
    pub async fn end_session(&self, sid: &str, reason: EndReason) -> Result<bool, IdpError> {
        self.end_session_because(sid, reason, None).await
    }

    /// Ends a session, with `cause` (the event that explains why, such as a detected reuse
    /// with its evidence) audited in the same transaction as the ending.
    #[tracing::instrument(skip_all, fields(sid = %sid))]
    pub(crate) async fn end_session_because(
        &self,
        sid: &str,
        reason: EndReason,
        cause: Option<&AuditEvent>,
    ) -> Result<bool, IdpError> {
        let ended = self
            .store
            .end_session(sid, self.now(), reason, cause)
            .await?;
        if let Some(cause) = cause {
            self.observed(cause);
        }
        if ended {
            self.observed_ending(reason);
            self.published_endings(1);
            tracing::info!(reason = reason.as_str(), "session ended");
        }
        Ok(ended)
    }
}
