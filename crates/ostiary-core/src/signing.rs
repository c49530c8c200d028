//! The signing keys' use cases: keeping them current on every instance, rotating them on
//! schedule or by hand, and the emergency rotation that withdraws a compromised key at once.
//!
//! The lifecycle itself (next → current → retired → removed, derived from stored times) is in
//! [`crate::keys`]. What is decided here:
//!
//! - [`Idp::maintain_keys`] runs at start and every minute on every instance: first keys,
//!   scheduled rotations, removals, sealing keys found in the clear, and a reload of the ring.
//! - [`Idp::rotate_keys`] publishes new keys. A normal rotation publishes them
//!   `keys.publish_ahead` seconds before they sign, so that every verifier's JWKS cache has
//!   them in time. An **emergency** rotation (`immediately`, for a compromised key) makes the
//!   new keys sign at once and *withdraws* every key there was, in one store transaction: the
//!   old keys are deleted (so no instance publishes or accepts them any more) and each `kid`
//!   is published on the revocation feed. Every instance reloads its keys when the feed tells
//!   it of a withdrawn `kid` (within a second or two: PostgreSQL notifies at once, SQLite is
//!   re-read every second), and verifiers following the feed (`ostiary-verify`) drop the key
//!   from their JWKS cache at once and refetch it. A token signed with a withdrawn key is not
//!   "valid until it expires": whoever holds the key can mint tokens with any `exp`, so such
//!   tokens are refused everywhere from the moment of the withdrawal; clients get new ones by
//!   refreshing. Sessions go on (their refresh tokens are not signed) unless the rotation
//!   also ends them (`end_sessions`).

use std::sync::Arc;

use serde_json::json;

use crate::Idp;
use crate::audit::{AuditEvent, AuditKind};
use crate::clock::UnixTime;
use crate::idp::{ID_TOKEN_ALG, IdpError, LOGOUT_TOKEN_TTL, LoginContext};
use crate::keys::{KeyError, KeyRing, KeyState, KeyStatus, LoadedKey, SigningAlgorithm, StoredKey};
use crate::session::EndReason;

/// Seconds a retired signing key stays published beyond the longest token lifetime (clock
/// skew and verifiers' leeway).
const KEY_RETENTION_MARGIN: i64 = 300;

/// How to rotate the signing keys ([`Idp::rotate_keys`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyRotation {
    /// Sign with the new keys at once and withdraw every existing key (a compromised key).
    /// Otherwise the new keys sign `keys.publish_ahead` seconds from now and the current ones
    /// retire normally.
    pub immediately: bool,
    /// Also end every active session (only with `immediately`): for when the compromise may
    /// reach further than the signing keys.
    pub end_sessions: bool,
}

/// What a rotation did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RotationOutcome {
    /// The new keys, with their states now.
    pub keys: Vec<KeyStatus>,
    /// The `kid`s withdrawn (emergency rotation only).
    pub withdrawn: Vec<String>,
    /// How many sessions ended (`end_sessions` only).
    pub sessions_ended: usize,
}

/// Who rotates, for the audit log: `actor` (`cli:USER`, `admin_api`, `system`) and, for the
/// admin API, where the request came from.
#[derive(Debug, Clone, Copy)]
pub struct Operator<'a> {
    /// The audit log's actor.
    pub actor: &'a str,
    /// The request's origin, if it came over HTTP.
    pub origin: Option<&'a LoginContext>,
}

impl Idp {
    /// How long a retired key stays published, seconds: the longest lifetime of anything it
    /// signed (access, ID and logout tokens), plus a margin for clock skew and leeway.
    pub fn key_retention(&self) -> i64 {
        self.config
            .access_token_ttl
            .max(self.config.id_token_ttl)
            .max(LOGOUT_TOKEN_TTL)
            .saturating_add(KEY_RETENTION_MARGIN)
    }

    fn algorithms_in_use(&self) -> [SigningAlgorithm; 2] {
        [self.config.access_token_alg, ID_TOKEN_ALG]
    }

    /// A new key for `alg`, sealed under the key-encryption key if there is one.
    async fn new_key(
        &self,
        alg: SigningAlgorithm,
        activates_at: UnixTime,
    ) -> Result<StoredKey, IdpError> {
        let now = self.now();
        let key = tokio::task::spawn_blocking(move || LoadedKey::generate(alg, now, activates_at))
            .await
            .map_err(|e| KeyError::from_message(e.to_string()))??;
        Ok(match &self.config.key_encryption_key {
            Some(kek) => kek.seal(&key)?,
            None => key,
        })
    }

    fn audit_key_generated(&self, key: &StoredKey, reason: &str, actor: &str) -> AuditEvent {
        AuditEvent::new(self.now(), AuditKind::SigningKeyGenerated, actor).details(json!({
            "kid": key.kid, "alg": key.alg.as_str(), "activates_at": key.activates_at,
            "reason": reason,
        }))
    }

    /// Brings the signing keys up to date, as every instance does at start and every
    /// [`crate::keys::KEY_RELOAD_INTERVAL`] seconds (and whenever the revocation feed
    /// announces a withdrawn key): generates a first key for an algorithm in use that has
    /// none; publishes the next key when the current one is due to rotate
    /// (`keys.rotation_interval`), `keys.publish_ahead` seconds before it signs (one store
    /// transaction decides, so that instances racing here publish one key); deletes keys past
    /// their retention; seals keys stored in the clear when a key-encryption key is set; and
    /// reloads the ring, so that keys published or withdrawn by other instances or by `ostiary
    /// keys rotate` are picked up. Generation, removal and sealing are audited. Does nothing
    /// for an IdP opened [for administration](Idp::for_administration).
    pub async fn maintain_keys(&self) -> Result<(), IdpError> {
        if !self.signs {
            return Ok(());
        }
        let now = self.now();
        let policy = self.config.keys;
        let mut stored = self.store.list_signing_keys().await?;
        let mut changed = self.seal_clear_keys(&stored, now).await?;
        let statuses = crate::keys::lifecycle(&stored, now, self.key_retention());
        for alg in self.algorithms_in_use() {
            let of_alg = || statuses.iter().filter(move |s| s.alg == alg);
            let Some(current) = of_alg().find(|s| s.state == KeyState::Current) else {
                // Instances starting together on an empty database store one first key.
                let key = self.new_key(alg, now).await?;
                if self
                    .store
                    .insert_next_signing_key(&key, UnixTime::MIN)
                    .await?
                {
                    self.audit(self.audit_key_generated(&key, "first_start", "system"))
                        .await;
                    tracing::info!(kid = %key.kid, alg = alg.as_str(), "generated signing key");
                }
                changed = true;
                continue;
            };
            let pending = of_alg().any(|s| s.state == KeyState::Next);
            let due = policy.rotation_interval > 0
                && now
                    >= current
                        .activates_at
                        .saturating_add(policy.rotation_interval)
                        .saturating_sub(policy.publish_ahead);
            if due && !pending {
                let activates_at = now.saturating_add(policy.publish_ahead).max(
                    current
                        .activates_at
                        .saturating_add(policy.rotation_interval),
                );
                let key = self.new_key(alg, activates_at).await?;
                if self.store.insert_next_signing_key(&key, now).await? {
                    self.audit(self.audit_key_generated(&key, "scheduled", "system"))
                        .await;
                    tracing::info!(kid = %key.kid, alg = alg.as_str(), activates_at, "published the next signing key");
                }
                changed = true;
            }
        }
        if changed {
            stored = self.store.list_signing_keys().await?;
        }
        for status in crate::keys::lifecycle(&stored, now, self.key_retention()) {
            if status.state == KeyState::Removed
                && self.store.delete_signing_key(&status.kid).await?
            {
                self.audit(
                    AuditEvent::new(now, AuditKind::SigningKeyRemoved, "system")
                        .details(json!({"kid": status.kid, "alg": status.alg.as_str()})),
                )
                .await;
                tracing::info!(kid = %status.kid, "removed a retired signing key");
            }
        }
        let ring = KeyRing::new(
            &stored,
            now,
            self.key_retention(),
            self.config.key_encryption_key.as_ref(),
        )?;
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(ring);
        Ok(())
    }

    /// Seals every stored key that is in the clear, when a key-encryption key is set (a
    /// database from before keys were sealed by default). `true` if it changed any.
    async fn seal_clear_keys(&self, stored: &[StoredKey], now: UnixTime) -> Result<bool, IdpError> {
        let Some(kek) = &self.config.key_encryption_key else {
            return Ok(false);
        };
        let statuses = crate::keys::lifecycle(stored, now, self.key_retention());
        let clear: Vec<&StoredKey> = stored
            .iter()
            .filter(|key| statuses.iter().any(|s| s.kid == key.kid && !s.encrypted))
            .collect();
        if clear.is_empty() {
            return Ok(false);
        }
        let sealed = clear
            .iter()
            .map(|key| kek.seal(key))
            .collect::<Result<Vec<_>, _>>()?;
        let kids: Vec<&str> = sealed.iter().map(|k| k.kid.as_str()).collect();
        let event = AuditEvent::new(now, AuditKind::SigningKeysSealed, "system")
            .details(json!({"kids": kids}));
        self.store
            .change_signing_keys(&sealed, &[], now, std::slice::from_ref(&event))
            .await?;
        self.observed(&event);
        tracing::info!(
            count = sealed.len(),
            "sealed the signing keys stored in the clear"
        );
        Ok(true)
    }

    /// Publishes a new signing key for each algorithm in use (`ostiary keys rotate`, `POST
    /// /admin/keys/rotate`), audited with the operator's name (see the module documentation):
    ///
    /// - normally the new keys sign `keys.publish_ahead` seconds from now, and a key already
    ///   waiting to sign is an error;
    /// - `immediately`, they sign at once and every existing key is withdrawn (deleted and
    ///   announced on the revocation feed), so that a compromised key stops being accepted by
    ///   this instance at once and by every other instance and following verifier within
    ///   seconds; with `end_sessions`, every active session ends too.
    pub async fn rotate_keys(
        &self,
        rotation: KeyRotation,
        operator: Operator<'_>,
    ) -> Result<RotationOutcome, IdpError> {
        let now = self.now();
        let origin = |event: AuditEvent| match operator.origin {
            Some(context) => event.origin(context.ip.as_deref(), context.user_agent.as_deref()),
            None => event,
        };
        let mut outcome = RotationOutcome::default();
        let created = if rotation.immediately {
            let stored = self.store.list_signing_keys().await?;
            let mut fresh = Vec::new();
            let mut events = Vec::new();
            for alg in self.algorithms_in_use() {
                let key = self.new_key(alg, now).await?;
                events.push(origin(self.audit_key_generated(
                    &key,
                    "immediate",
                    operator.actor,
                )));
                fresh.push(key);
            }
            for key in &stored {
                events.push(origin(
                    AuditEvent::new(now, AuditKind::SigningKeyWithdrawn, operator.actor)
                        .details(json!({"kid": key.kid, "alg": key.alg.as_str()})),
                ));
            }
            outcome.withdrawn = stored.iter().map(|k| k.kid.clone()).collect();
            self.store
                .change_signing_keys(&fresh, &outcome.withdrawn, now, &events)
                .await?;
            for event in &events {
                self.observed(event);
            }
            // Streams and back-channel workers of this process; others hear the feed.
            self.revocations.notify_waiters();
            tracing::warn!(withdrawn = ?outcome.withdrawn, "signing keys withdrawn; new keys sign now");
            fresh.into_iter().map(|k| k.kid).collect::<Vec<_>>()
        } else {
            let mut created = Vec::new();
            for alg in self.algorithms_in_use() {
                let key = self
                    .new_key(alg, now.saturating_add(self.config.keys.publish_ahead))
                    .await?;
                if !self.store.insert_next_signing_key(&key, now).await? {
                    return Err(IdpError::Rejected(format!(
                        "a next {} key is already published and waiting to sign; see `ostiary keys list`",
                        alg.as_str()
                    )));
                }
                self.audit(origin(self.audit_key_generated(
                    &key,
                    "manual",
                    operator.actor,
                )))
                .await;
                created.push(key.kid);
            }
            created
        };
        self.maintain_keys().await?;
        if rotation.immediately && rotation.end_sessions {
            for (session, _) in self.store.list_active_sessions(None).await? {
                if self
                    .end_session(&session.sid, EndReason::SigningKeyCompromised)
                    .await?
                {
                    outcome.sessions_ended += 1;
                }
            }
        }
        outcome.keys = self
            .key_statuses()
            .await?
            .into_iter()
            .filter(|s| created.contains(&s.kid))
            .collect();
        Ok(outcome)
    }

    /// Every stored signing key with its state now (`ostiary keys list`).
    pub async fn key_statuses(&self) -> Result<Vec<KeyStatus>, IdpError> {
        let stored = self.store.list_signing_keys().await?;
        Ok(crate::keys::lifecycle(
            &stored,
            self.now(),
            self.key_retention(),
        ))
    }
}
