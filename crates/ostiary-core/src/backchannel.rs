//! Back-channel logout (OIDC Back-Channel Logout 1.0): the `logout+jwt` tokens sent to clients when
//! a session ends, their delivery outcomes, and what is still undelivered.

use crate::audit::{AuditEvent, AuditKind};
use crate::keys::KeyError;
use crate::secret::random_id;
use crate::store::{BackchannelDelivery, DeliveryOutcome};
use crate::token::{self};
use serde_json::json;

use crate::Idp;
use crate::idp::{
    BACKCHANNEL_MAX_ATTEMPTS, ID_TOKEN_ALG, IdpError, LOGOUT_TOKEN_TTL, LogoutSender,
};

impl Idp {
    /// Sends the due back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4)
    /// through `sender`, at most `limit`, and records each outcome: delivered, retried later
    /// with exponential backoff (10 s doubling, at most an hour apart), or given up after
    /// [`BACKCHANNEL_MAX_ATTEMPTS`]. Each delivery is claimed for a minute first, so several
    /// instances never send the same one at once. Returns how many were attempted.
    pub async fn deliver_backchannel_logouts(
        &self,
        sender: &dyn LogoutSender,
        limit: u32,
    ) -> Result<usize, IdpError> {
        let now = self.now();
        let due = self
            .store
            .claim_backchannel_deliveries(now, 60, limit)
            .await?;
        for delivery in &due {
            let token = self.mint_logout_token(&delivery.client_id, &delivery.sid)?;
            let outcome = match sender.send(&delivery.uri, &token).await {
                Ok(()) => DeliveryOutcome::Delivered,
                Err(error) if delivery.attempts + 1 >= BACKCHANNEL_MAX_ATTEMPTS => {
                    DeliveryOutcome::GaveUp { error }
                }
                Err(error) => {
                    let backoff = (10_i64 << delivery.attempts.clamp(0, 9)).min(3600);
                    DeliveryOutcome::Retry {
                        retry_at: now + backoff,
                        error,
                    }
                }
            };
            self.store
                .record_backchannel_attempt(delivery.id, now, &outcome)
                .await?;
            let (kind, details) = match &outcome {
                DeliveryOutcome::Delivered => (
                    AuditKind::BackchannelDelivered,
                    json!({"attempt": delivery.attempts + 1}),
                ),
                DeliveryOutcome::Retry { retry_at, error } => (
                    AuditKind::BackchannelFailed,
                    json!({"attempt": delivery.attempts + 1, "retry_at": retry_at, "error": error}),
                ),
                DeliveryOutcome::GaveUp { error } => (
                    AuditKind::BackchannelFailed,
                    json!({"attempt": delivery.attempts + 1, "gave_up": true, "error": error}),
                ),
            };
            self.audit(
                AuditEvent::new(now, kind, "system")
                    .session(&delivery.sid)
                    .client(&delivery.client_id)
                    .details(details),
            )
            .await;
        }
        Ok(due.len())
    }

    /// Deliveries not yet made (pending or given up), for operators.
    pub async fn undelivered_backchannel_logouts(
        &self,
    ) -> Result<Vec<BackchannelDelivery>, IdpError> {
        Ok(self.store.list_undelivered_backchannel().await?)
    }

    fn mint_logout_token(&self, client_id: &str, sid: &str) -> Result<String, IdpError> {
        let now = self.now();
        let claims = json!({
            "iss": self.config.issuer,
            "aud": client_id,
            "iat": now,
            "exp": now + LOGOUT_TOKEN_TTL,
            "jti": random_id(),
            "sid": sid,
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        });
        let keys = self.keys();
        let key = keys
            .signer(ID_TOKEN_ALG)
            .ok_or_else(|| KeyError::from_message("no ID-token signing key".into()))?;
        Ok(token::sign(key, token::LOGOUT_TOKEN_TYP, &claims)?)
    }
}
