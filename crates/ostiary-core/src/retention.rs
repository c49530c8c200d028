//! Retention: what is deleted, and when, so that the database stays the same size under a
//! steady load however long it runs, and sessions nobody touches still end on time.
//!
//! [`Idp::apply_retention`] is one pass of the job every instance runs every
//! [`RetentionPolicy::interval`] seconds. A pass first claims the job in the store for one
//! interval ([`Store::claim_job`]), so that instances sharing a database take turns instead of
//! doing the same work twice; the others skip. Then, in bounded batches:
//!
//! 1. Sessions past their idle or absolute limit that nobody touched are **ended** like any
//!    other ending: `session_ended` in the audit log, the `sid` on the revocation feed,
//!    back-channel logout queued.
//! 2. What no longer matters is **deleted** ([`Prunable`]): sessions ended more than
//!    [`RetentionPolicy::ended_sessions`] ago with everything of theirs (refresh families and
//!    every token hash of them, codes, client records, back-channel deliveries); authorization
//!    codes past [`RetentionPolicy::authorization_codes`]; records of access tokens (issued or
//!    revoked) once they expired; revocation-feed entries once no access token issued before
//!    them can be valid; back-channel deliveries done for
//!    [`RetentionPolicy::backchannel_deliveries`]; failed-login counters once forgotten (their
//!    last aggregate reported first); and audit events older than
//!    [`RetentionPolicy::audit_events`].
//!
//! Reuse detection needs a family's old token hashes only while the family lives: a token of an
//! ended family is refused whether or not it is still known. So they go with their session,
//! never before. A replayed authorization code is recognised (and its session ended) until
//! the code is deleted; after that it is merely unknown.
//!
//! Each pass that deleted anything is audited (`retention_applied`, with the counts and the
//! cut-off times): the audit log is append-only but for this job.

use serde_json::json;

use crate::Idp;
use crate::audit::{AuditEvent, AuditKind};
use crate::clock::UnixTime;
use crate::idp::IdpError;
use crate::session::SessionState;
use crate::store::StoreError;

/// One day, seconds.
const DAY: i64 = 24 * 3600;

/// How long records are kept. All durations in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Audit events are deleted this long after they happened. Default 34560000 (400 days,
    /// more than a year and a month, as audit requirements commonly ask). 0: never.
    pub audit_events: i64,
    /// Ended sessions, with their refresh families and token hashes, codes and deliveries,
    /// are deleted this long after they ended. Default 2592000 (30 days).
    pub ended_sessions: i64,
    /// Authorization codes (used or not) are deleted this long after they expired; until
    /// then a replay is recognised. Default 86400 (a day).
    pub authorization_codes: i64,
    /// Back-channel logout deliveries are deleted this long after they were delivered or given
    /// up. Default 604800 (7 days).
    pub backchannel_deliveries: i64,
    /// How often each instance runs the job. Default 300.
    pub interval: i64,
    /// Most rows deleted by one statement. Default 1000.
    pub batch_size: u32,
    /// Most batches of each kind in one pass (what is left waits for the next). Default 100.
    pub max_batches: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            audit_events: 400 * DAY,
            ended_sessions: 30 * DAY,
            authorization_codes: DAY,
            backchannel_deliveries: 7 * DAY,
            interval: 300,
            batch_size: 1000,
            max_batches: 100,
        }
    }
}

impl RetentionPolicy {
    /// Rejects negative durations, a zero interval or batch.
    pub fn validate(&self) -> Result<(), String> {
        let durations = [
            ("audit_events", self.audit_events),
            ("ended_sessions", self.ended_sessions),
            ("authorization_codes", self.authorization_codes),
            ("backchannel_deliveries", self.backchannel_deliveries),
        ];
        if let Some((name, _)) = durations.iter().find(|(_, d)| *d < 0) {
            return Err(format!("retention.{name} must be 0 or more seconds"));
        }
        if self.interval <= 0 || self.batch_size == 0 || self.max_batches == 0 {
            return Err("retention.interval, batch_size and max_batches must be at least 1".into());
        }
        Ok(())
    }
}

/// What the retention job deletes, each kind up to a cut-off time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prunable {
    /// Audit events that happened before the cut-off.
    AuditEvents,
    /// Sessions that ended before the cut-off, with everything of theirs.
    EndedSessions,
    /// Authorization codes that expired before the cut-off.
    AuthorizationCodes,
    /// Records of issued and of revoked access tokens that expired before the cut-off.
    AccessTokens,
    /// Revocation-feed entries revoked before the cut-off.
    Revocations,
    /// Back-channel deliveries delivered or given up before the cut-off.
    BackchannelDeliveries,
}

impl Prunable {
    /// Every kind, in the order a pass deletes them.
    pub const ALL: [Prunable; 6] = [
        Self::EndedSessions,
        Self::AuthorizationCodes,
        Self::AccessTokens,
        Self::Revocations,
        Self::BackchannelDeliveries,
        Self::AuditEvents,
    ];

    /// Stable name (audit details, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuditEvents => "audit_events",
            Self::EndedSessions => "ended_sessions",
            Self::AuthorizationCodes => "authorization_codes",
            Self::AccessTokens => "access_tokens",
            Self::Revocations => "revocations",
            Self::BackchannelDeliveries => "backchannel_deliveries",
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Whether this instance held the job (another one did it otherwise).
    pub ran: bool,
    /// Sessions ended because their time was up.
    pub sessions_expired: u64,
    /// Rows deleted, per kind.
    pub deleted: Vec<(Prunable, u64)>,
    /// Failed-login counters forgotten.
    pub login_counters: u64,
}

/// The name the job is claimed under in the store.
const JOB: &str = "retention";

impl Idp {
    /// One pass of the retention job (see the module documentation), if this instance can
    /// claim it (`holder` names the instance). Stops at the first storage error; what it
    /// did so far stays done.
    pub async fn apply_retention(&self, holder: &str) -> Result<RetentionReport, IdpError> {
        let policy = self.config().retention;
        let now = self.now();
        if !self
            .store()
            .claim_job(JOB, holder, now, policy.interval)
            .await?
        {
            return Ok(RetentionReport::default());
        }
        let mut report = RetentionReport {
            ran: true,
            ..RetentionReport::default()
        };
        report.sessions_expired = self.end_expired_sessions(&policy, now).await?;

        let cutoff = |what: Prunable| -> Option<UnixTime> {
            Some(match what {
                Prunable::AuditEvents if policy.audit_events == 0 => return None,
                Prunable::AuditEvents => now - policy.audit_events,
                Prunable::EndedSessions => now - policy.ended_sessions,
                Prunable::AuthorizationCodes => now - policy.authorization_codes,
                Prunable::AccessTokens => now,
                // A minute more than needed, so that a reader at the window's edge misses
                // nothing (as the feed itself prunes).
                Prunable::Revocations => now - self.revocation_retention() - 60,
                Prunable::BackchannelDeliveries => now - policy.backchannel_deliveries,
            })
        };
        let mut cutoffs = serde_json::Map::new();
        for what in Prunable::ALL {
            let Some(before) = cutoff(what) else {
                continue;
            };
            let mut deleted = 0;
            for _ in 0..policy.max_batches {
                let batch = self.store().prune(what, before, policy.batch_size).await?;
                deleted += batch;
                if batch < u64::from(policy.batch_size) {
                    break;
                }
            }
            if deleted > 0 {
                report.deleted.push((what, deleted));
                cutoffs.insert(what.as_str().into(), json!(before));
            }
        }

        let window = self.config().login_throttle.window;
        for _ in 0..policy.max_batches {
            let (forgotten, reports) = self
                .store()
                .prune_login_counters(now - window, policy.batch_size)
                .await?;
            for throttled in &reports {
                self.audit_throttle_report(throttled, now).await;
            }
            report.login_counters += forgotten;
            if forgotten < u64::from(policy.batch_size) {
                break;
            }
        }

        if !report.deleted.is_empty() {
            let counts: serde_json::Map<String, serde_json::Value> = report
                .deleted
                .iter()
                .map(|(what, n)| (what.as_str().to_owned(), json!(n)))
                .collect();
            self.audit(
                AuditEvent::new(now, AuditKind::RetentionApplied, "system")
                    .details(json!({"deleted": counts, "before": cutoffs})),
            )
            .await;
            tracing::info!(?report, "retention applied");
        }
        Ok(report)
    }

    /// Ends the sessions whose idle or absolute limit passed while nobody used them, in
    /// batches; returns how many ended.
    async fn end_expired_sessions(
        &self,
        policy: &RetentionPolicy,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let session_policy = self.config().session;
        let mut ended = 0;
        for _ in 0..policy.max_batches {
            let expired = self
                .store()
                .list_expired_sessions(
                    now - session_policy.idle_timeout,
                    now - session_policy.absolute_lifetime,
                    policy.batch_size,
                )
                .await?;
            let found = expired.len();
            for session in expired {
                if let SessionState::Expired(reason) = session.state_at(now, &session_policy) {
                    match self.end_session(&session.sid, reason).await {
                        Ok(true) => ended += 1,
                        Ok(false) => {}
                        Err(IdpError::Store(error)) => return Err(error),
                        Err(other) => {
                            tracing::error!(error = %other, "could not end an expired session");
                        }
                    }
                }
            }
            if found < policy.batch_size as usize {
                break;
            }
        }
        Ok(ended)
    }
}
