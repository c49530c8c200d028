//! [`RedisReplayStore`]: a DPoP replay store several resource-server replicas share (feature
//! `redis`).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{ProofId, ReplayStore, ReplayStoreError, Seen};
use crate::ConfigError;

/// How long one Redis command or connection attempt may take before the proof is refused as
/// [`ReplayStoreError::Unavailable`].
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest a proof is remembered, seconds (a day): far beyond any proof window.
const MAX_REMEMBERED: i64 = 86_400;

/// Accepted DPoP proofs kept in Redis: one key per proof, `PREFIX` + thumbprint + `:` +
/// base64url(SHA-256(`jti`)), set with `SET … NX EX seconds` (until the end of its window by
/// the validator's clock, plus one second; at most a day), so the first replica to record a
/// proof wins and Redis forgets it after its window. Every replica behind one public
/// URL uses the same Redis and prefix.
///
/// Commands time out after 1 s; the connection is re-established after an error. While Redis
/// cannot answer, DPoP requests are refused with 503 (fail closed), bearer tokens are not
/// affected.
#[derive(Clone)]
pub struct RedisReplayStore {
    connection: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReplayStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisReplayStore {
    /// Connects to `url` (`redis://host:port/db`, or `rediss://` for TLS if the `redis` crate
    /// was built with it), keys prefixed with `prefix` (e.g. `"orders-api:dpop:"`).
    ///
    /// # Errors
    /// [`ConfigError::ReplayStore`] if the URL does not parse or Redis cannot be reached.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, ConfigError> {
        let client =
            redis::Client::open(url).map_err(|e| ConfigError::ReplayStore(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| ConfigError::ReplayStore(e.to_string()))?;
        Ok(Self {
            connection,
            prefix: prefix.into(),
        })
    }

    fn key(&self, proof: &ProofId) -> String {
        format!(
            "{}{}:{}",
            self.prefix,
            proof.jkt,
            URL_SAFE_NO_PAD.encode(proof.jti_hash)
        )
    }
}

#[async_trait::async_trait]
impl ReplayStore for RedisReplayStore {
    async fn record(
        &self,
        proof: &ProofId,
        until: i64,
        now: i64,
    ) -> Result<Seen, ReplayStoreError> {
        let mut connection = self.connection.clone();
        // Remembered from now (the validator's clock) until one second after the last
        // acceptable moment, at most a day.
        let seconds = until.saturating_sub(now).clamp(0, MAX_REMEMBERED) + 1;
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key(proof))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(seconds)
            .query_async(&mut connection)
            .await
            .map_err(|e| ReplayStoreError::Unavailable(e.to_string()))?;
        Ok(if set.is_some() {
            Seen::New
        } else {
            Seen::Replayed
        })
    }
}
