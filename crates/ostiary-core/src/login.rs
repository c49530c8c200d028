//! Signing in at the IdP's login form: the password check under the failed-login throttle
//! ([`crate::throttle`]), the new session admitted under the session limit, the throttle's
//! aggregated reports, and clearing a user's counters.

use serde_json::json;

use crate::Idp;
use crate::audit::{AuditEvent, AuditKind};
use crate::clock::UnixTime;
use crate::idp::{IdpError, LoginContext, truncate};
use crate::secret::{Credential, Password, random_id};
use crate::session::{Session, SessionLimitAction, SessionState};
use crate::store::{SessionAdmission, SessionLimit};
use crate::user::{User, Username};

impl Idp {
    /// Checks a username and password and, on success, creates a new session with a fresh
    /// `sid` and a fresh browser cookie (never reusing an earlier one: no session fixation).
    ///
    /// Under the failed-login throttle ([`crate::throttle`]): [`IdpError::TooManyAttempts`]
    /// when this username from this address must wait, and a failure carries how long the
    /// answer should be held back ([`IdpError::InvalidCredentials`]'s `delay`).
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        username: &str,
        password: Password,
        context: LoginContext,
    ) -> Result<(Session, Credential), IdpError> {
        let now = self.now();
        let (keys, attempt) = self
            .throttle
            .begin_attempt(self.store.as_ref(), username, context.ip.as_deref(), now)
            .await?;
        let evaluation = &attempt.evaluation;
        for report in &attempt.reports {
            self.audit_throttle_report(report, now).await;
        }
        if let Some(retry_after) = evaluation.refused_for {
            tracing::warn!("login refused: too many failed attempts");
            self.observer
                .observe_aggregated(AuditKind::LoginFailed, Some("throttled"));
            return Err(IdpError::TooManyAttempts(retry_after));
        }
        let user = match Username::parse(username) {
            Ok(username) => self.store.find_user_by_username(&username).await?,
            Err(_) => None,
        };
        let too_long = password.expose().len() > Password::MAX_BYTES;
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let verified = !too_long && self.hasher.verify(password, hash).await;
        let disabled = user.as_ref().is_some_and(|u| u.disabled);
        let known_user_id = user.as_ref().map(|u| u.id.clone());
        let Some(user) = user.filter(|u| verified && !u.disabled) else {
            tracing::info!("login failed");
            let reason = if verified && disabled {
                "account_disabled"
            } else {
                "wrong_credentials"
            };
            if evaluation.aggregate_into.is_some() {
                // Counted into the throttle's aggregate, reported once a minute.
                self.observer
                    .observe_aggregated(AuditKind::LoginFailed, Some(reason));
            } else {
                let mut event = AuditEvent::new(now, AuditKind::LoginFailed, "user")
                    .origin(context.ip.as_deref(), context.user_agent.as_deref())
                    .details(json!({"reason": reason, "known_user": known_user_id.is_some()}));
                if let Some(id) = &known_user_id {
                    event = event.user(id);
                }
                self.audit(event).await;
            }
            return Err(IdpError::InvalidCredentials {
                delay: std::time::Duration::from_secs(evaluation.failure_delay.unsigned_abs()),
            });
        };
        self.throttle
            .record_success(self.store.as_ref(), &keys, evaluation.aggregate_into)
            .await?;
        let sid = random_id();
        let cookie = Credential::generate();
        let session = Session {
            sid,
            user_id: user.id.clone(),
            cookie_hash: Some(cookie.hash()),
            auth_time: now,
            created_at: now,
            last_used_at: now,
            ended_at: None,
            end_reason: None,
            user_agent: context.user_agent.map(|ua| truncate(ua, 256)),
            ip: context.ip,
        };
        self.admit_session(&session, &user, now).await?;
        tracing::info!(sid = %session.sid, user_id = %user.id, "login succeeded; session created");
        Ok((session, cookie))
    }

    /// The active session a browser cookie belongs to, with its user.
    pub async fn find_browser_session(
        &self,
        cookie: &Credential,
    ) -> Result<Option<(Session, User)>, IdpError> {
        let Some(session) = self.store.find_session_by_cookie(&cookie.hash()).await? else {
            return Ok(None);
        };
        self.active_session_user(session).await
    }

    pub(crate) async fn active_session_user(
        &self,
        session: Session,
    ) -> Result<Option<(Session, User)>, IdpError> {
        let now = self.now();
        match session.state_at(now, &self.config.session) {
            SessionState::Active => {}
            SessionState::Ended => return Ok(None),
            SessionState::Expired(reason) => {
                self.end_session(&session.sid, reason).await?;
                return Ok(None);
            }
        }
        match self.store.find_user(&session.user_id).await? {
            Some(user) if !user.disabled => Ok(Some((session, user))),
            _ => Ok(None),
        }
    }

    /// Stores a new session within `max_sessions_per_user`, in one store transaction (so that
    /// parallel logins cannot exceed it) with its `login_succeeded` event and the audit of any
    /// eviction: the oldest sessions are ended to make room, or the login is refused.
    pub(crate) async fn admit_session(
        &self,
        session: &Session,
        user: &User,
        now: UnixTime,
    ) -> Result<(), IdpError> {
        let policy = &self.config.session;
        let limit = SessionLimit {
            max: policy.max_sessions_per_user,
            evict_oldest: policy.on_session_limit == SessionLimitAction::EndOldest,
            idle_since: now - policy.idle_timeout,
            absolute_since: now - policy.absolute_lifetime,
        };
        let login = AuditEvent::new(now, AuditKind::LoginSucceeded, "user")
            .user(&user.id)
            .session(&session.sid)
            .origin(session.ip.as_deref(), session.user_agent.as_deref());
        match self.store.insert_session(session, limit, &login).await? {
            SessionAdmission::Admitted { evicted } => {
                self.observed(&login);
                self.observed_evictions(evicted.len());
                self.published_endings(evicted.len());
                Ok(())
            }
            SessionAdmission::Refused => {
                self.audit(
                    AuditEvent::new(now, AuditKind::LoginFailed, "user")
                        .user(&user.id)
                        .origin(session.ip.as_deref(), session.user_agent.as_deref())
                        .details(
                            json!({"reason": "session_limit", "max_sessions_per_user": limit.max}),
                        ),
                )
                .await;
                Err(IdpError::SessionLimit(limit.max))
            }
        }
    }

    /// Audits a report of the failed-login throttle: the attempts one counter took into its
    /// aggregate. Names the username only if such a user exists (the counter's text may be
    /// anything, even a mistyped password).
    pub(crate) async fn audit_throttle_report(
        &self,
        report: &crate::store::ThrottleReport,
        now: UnixTime,
    ) {
        let username = report.key.strip_prefix("user:").or_else(|| {
            report
                .key
                .strip_prefix("pair:")
                .and_then(|k| k.split('|').next())
        });
        let user_id = match username.map(Username::parse) {
            Some(Ok(name)) => match self.store.find_user_by_username(&name).await {
                Ok(user) => user.map(|u| u.id),
                Err(error) => {
                    tracing::error!(%error, "could not look up the throttled user");
                    None
                }
            },
            _ => None,
        };
        let address = report.key.strip_prefix("ip:").or_else(|| {
            report
                .key
                .strip_prefix("pair:")
                .and_then(|k| k.rsplit('|').next())
        });
        let mut event = AuditEvent::new(now, AuditKind::LoginThrottled, "system")
            .origin(address, None)
            .details(json!({
                "reason": "throttled",
                "counter": report.kind.as_str(),
                "attempts": report.attempts,
                "since": report.since,
            }));
        if let Some(id) = user_id {
            event = event.user(&id);
        }
        self.audit(event).await;
    }

    /// Clears the failed-login counters of `username` (`ostiary user unlock`, the admin API),
    /// audited. Returns how many counters there were.
    #[tracing::instrument(skip_all, fields(username = %username))]
    pub async fn unlock_user(&self, username: &Username, actor: &str) -> Result<u64, IdpError> {
        let user = self
            .store
            .find_user_by_username(username)
            .await?
            .ok_or_else(|| IdpError::Rejected(format!("no user {username}")))?;
        let cleared = self
            .store
            .clear_login_counters(&crate::throttle::username_key(username.as_str()))
            .await?;
        self.audit(
            AuditEvent::new(self.now(), AuditKind::LoginCountersCleared, actor)
                .user(&user.id)
                .details(json!({"counters": cleared})),
        )
        .await;
        Ok(cleared)
    }
}
