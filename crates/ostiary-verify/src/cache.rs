//! The remote JWKS cache: fetch, keep, refresh, and protect the identity provider from us.
//!
//! Rules (all times read from the validator's [`Clock`]):
//! - Keys are fetched on first use (or by [`Validator::prefetch`](crate::Validator::prefetch))
//!   and are fresh for the response's `Cache-Control: max-age`, clamped to
//!   [[`MIN_TTL`], [`MAX_TTL`]], or [`DEFAULT_TTL`] when absent.
//! - One fetch at a time (`refresh` mutex). While it is in flight, validations that have
//!   stale keys use them; validations with no keys at all wait for its result.
//! - A failed fetch is not retried before [`RETRY_AFTER_FAILURE`]; meanwhile, and whenever a
//!   refresh fails, the stale keys keep being used (with a warning), because failing every
//!   request during an identity-provider outage helps nobody. No keys at all is
//!   [`ValidationError::JwksUnavailable`].
//! - A token whose `kid` is unknown may trigger one refetch (key rotation), but such refetches
//!   happen at most once per [`UNKNOWN_KID_REFETCH_INTERVAL`], so a flood of tokens with random
//!   `kid`s costs the identity provider one request per interval.
//! - Responses are bounded: [`FETCH_TIMEOUT`] for the whole exchange, [`MAX_JWKS_SIZE`] bytes,
//!   no redirects.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use reqwest::header::{ACCEPT, CACHE_CONTROL, HeaderMap};

use crate::jwks::{KeySet, parse_jwk_set};
use crate::{Clock, ConfigError, ValidationError};

/// Lower bound of the cache lifetime, seconds.
pub(crate) const MIN_TTL: i64 = 60;
/// Upper bound of the cache lifetime, seconds (24 h).
pub(crate) const MAX_TTL: i64 = 24 * 60 * 60;
/// Cache lifetime when the response has no `max-age`, seconds.
pub(crate) const DEFAULT_TTL: i64 = 5 * 60;
/// Minimum time between two refetches caused by unknown `kid`s, seconds.
pub(crate) const UNKNOWN_KID_REFETCH_INTERVAL: i64 = 30;
/// After a failed fetch, no new attempt for this long, seconds.
pub(crate) const RETRY_AFTER_FAILURE: i64 = 10;
/// Timeout of one JWKS request, connection and body included.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document accepted, bytes.
pub(crate) const MAX_JWKS_SIZE: usize = 256 * 1024;

/// A JWKS fetched from the identity provider's `jwks_uri` and cached.
pub(crate) struct RemoteJwks {
    url: reqwest::Url,
    client: reqwest::Client,
    state: Mutex<CacheState>,
    /// Held for the duration of a fetch, so there is at most one in flight.
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct CacheState {
    keys: Option<Arc<KeySet>>,
    /// Unix seconds from which `keys` are stale.
    fresh_until: i64,
    /// Bumped by every successful fetch, so a task that waited for `refresh` can tell that
    /// the keys changed meanwhile.
    generation: u64,
    /// Unix seconds before which no fetch is attempted (set after a failure).
    retry_at: i64,
    /// Unix seconds of the last refetch caused by an unknown `kid`.
    last_unknown_kid_refetch: Option<i64>,
}

/// Keys to validate with, and the generation they belong to.
pub(crate) struct Snapshot {
    pub(crate) keys: Arc<KeySet>,
    pub(crate) generation: u64,
}

#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("unexpected HTTP status {0}")]
    Status(reqwest::StatusCode),
    #[error("response larger than {MAX_JWKS_SIZE} bytes")]
    TooLarge,
    #[error("response is not a JWKS: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the JWKS has no key usable for signature verification")]
    NoUsableKeys,
}

impl RemoteJwks {
    /// Checks the URL (https, or http to a loopback host) and builds the HTTP client.
    pub(crate) fn new(url: &str) -> Result<Self, ConfigError> {
        let url = reqwest::Url::parse(url)
            .map_err(|error| ConfigError::InvalidJwksUrl(error.to_string()))?;
        let loopback = is_loopback(&url);
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => return Err(ConfigError::InsecureJwksUrl),
            other => {
                return Err(ConfigError::InvalidJwksUrl(format!(
                    "unsupported scheme {other}"
                )));
            }
        }
        let mut builder = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            // A redirect could lead anywhere, including to plain http: the configured URL is
            // the only place keys come from.
            .redirect(reqwest::redirect::Policy::none());
        if loopback {
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(ConfigError::HttpClient)?;
        Ok(Self {
            url,
            client,
            state: Mutex::default(),
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    pub(crate) fn url(&self) -> &str {
        self.url.as_str()
    }

    fn state(&self) -> MutexGuard<'_, CacheState> {
        // The state is a few plain fields updated in one go; a panic elsewhere cannot leave
        // it half-written, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The keys to validate with: cached if fresh, else refetched, else stale.
    ///
    /// # Errors
    /// [`ValidationError::JwksUnavailable`] when no keys were ever obtained.
    pub(crate) async fn keys(&self, clock: &dyn Clock) -> Result<Snapshot, ValidationError> {
        if let Some(snapshot) = self.fresh(clock.now_unix()) {
            return Ok(snapshot);
        }

        let _in_flight = match self.refresh.try_lock() {
            Ok(guard) => guard,
            // A fetch is already under way: with stale keys at hand, do not queue behind it
            // (it may take up to the timeout); without any, wait for its result.
            Err(_) => match self.stale() {
                Ok(stale) => return Ok(stale),
                Err(_) => self.refresh.lock().await,
            },
        };
        // Whoever held the lock before us may have refreshed already.
        let now = clock.now_unix();
        if let Some(snapshot) = self.fresh(now) {
            return Ok(snapshot);
        }
        if now < self.state().retry_at {
            return self.stale();
        }
        match self.fetch().await {
            Ok((keys, ttl)) => Ok(self.store(keys, ttl, now)),
            Err(error) => {
                self.state().retry_at = now.saturating_add(RETRY_AFTER_FAILURE);
                let stale = self.stale();
                if stale.is_ok() {
                    tracing::warn!(url = %self.url, %error, "JWKS refresh failed; using the stale keys");
                } else {
                    tracing::error!(url = %self.url, %error, "JWKS fetch failed; no keys to validate with");
                }
                stale
            }
        }
    }

    /// Refetches because a token's `kid` is not in generation `seen` of the keys.
    ///
    /// Returns newer keys to look in, or `None` when there are none: the refetch was
    /// rate-limited, or failed.
    pub(crate) async fn refetch_for_unknown_kid(
        &self,
        clock: &dyn Clock,
        seen: u64,
    ) -> Option<Arc<KeySet>> {
        let _in_flight = self.refresh.lock().await;
        let now = clock.now_unix();
        {
            let mut state = self.state();
            if state.generation != seen {
                // Another task refetched while we waited: look in its keys, do not fetch again.
                return state.keys.clone();
            }
            if now < state.retry_at {
                return None;
            }
            if let Some(last) = state.last_unknown_kid_refetch
                && now.saturating_sub(last) < UNKNOWN_KID_REFETCH_INTERVAL
            {
                tracing::debug!("unknown kid; JWKS refetch rate-limited");
                return None;
            }
            state.last_unknown_kid_refetch = Some(now);
        }
        tracing::debug!(url = %self.url, "unknown kid; refetching the JWKS");
        match self.fetch().await {
            Ok((keys, ttl)) => Some(self.store(keys, ttl, now).keys),
            Err(error) => {
                self.state().retry_at = now.saturating_add(RETRY_AFTER_FAILURE);
                tracing::warn!(url = %self.url, %error, "JWKS refetch for an unknown kid failed");
                None
            }
        }
    }

    /// Forgets the key `kid` at once (the identity provider withdrew it, as its revocation
    /// feed says) and makes the next validation refetch the JWKS, rate limits aside: the cached
    /// set is stale by definition, and the new keys are what the next tokens carry.
    pub(crate) fn withdraw(&self, kid: &str) {
        let mut state = self.state();
        if let Some(keys) = &state.keys
            && let Some(remaining) = keys.without_kid(kid)
        {
            state.keys = Some(Arc::new(remaining));
            state.generation += 1;
        }
        state.fresh_until = 0;
        state.retry_at = 0;
        state.last_unknown_kid_refetch = None;
        tracing::info!(url = %self.url, kid, "signing key withdrawn; dropped from the JWKS cache");
    }

    fn fresh(&self, now: i64) -> Option<Snapshot> {
        let state = self.state();
        match &state.keys {
            Some(keys) if now < state.fresh_until => Some(Snapshot {
                keys: Arc::clone(keys),
                generation: state.generation,
            }),
            _ => None,
        }
    }

    fn stale(&self) -> Result<Snapshot, ValidationError> {
        let state = self.state();
        let keys = state.keys.clone().ok_or(ValidationError::JwksUnavailable)?;
        Ok(Snapshot {
            keys,
            generation: state.generation,
        })
    }

    fn store(&self, keys: KeySet, ttl: i64, now: i64) -> Snapshot {
        let keys = Arc::new(keys);
        let mut state = self.state();
        state.keys = Some(Arc::clone(&keys));
        state.fresh_until = now.saturating_add(ttl);
        state.generation += 1;
        state.retry_at = 0;
        tracing::debug!(url = %self.url, keys = keys.len(), ttl, "JWKS fetched");
        Snapshot {
            keys,
            generation: state.generation,
        }
    }

    /// One GET of the JWKS, bounded in time and size. Returns the vetted keys and the cache
    /// lifetime in seconds.
    async fn fetch(&self) -> Result<(KeySet, i64), FetchError> {
        let mut response = self
            .client
            .get(self.url.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status()));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_JWKS_SIZE as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let ttl = cache_lifetime(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_JWKS_SIZE {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let keys = KeySet::from_jwk_set(&parse_jwk_set(&body)?);
        if keys.len() == 0 {
            // More likely a broken deployment than a deliberate revocation of every key:
            // keep the keys we have.
            return Err(FetchError::NoUsableKeys);
        }
        Ok((keys, ttl))
    }
}

/// `http://localhost`, `127.0.0.0/8` and `[::1]`: where plain http is acceptable (tests, a
/// sidecar identity provider).
pub(crate) fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The cache lifetime, seconds, from `Cache-Control`: `max-age` clamped to
/// [`MIN_TTL`]..=[`MAX_TTL`]; `no-cache`/`no-store` count as the minimum; [`DEFAULT_TTL`] when
/// the header or the directive is absent or unreadable.
pub(crate) fn cache_lifetime(headers: &HeaderMap) -> i64 {
    let mut max_age = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
                max_age = Some(0);
            } else if name.eq_ignore_ascii_case("max-age")
                && let Some(seconds) = argument.and_then(|a| a.parse::<u64>().ok())
            {
                max_age = Some(max_age.map_or(seconds, |current: u64| current.min(seconds)));
            }
        }
    }
    max_age.map_or(DEFAULT_TTL, |seconds| {
        i64::try_from(seconds)
            .unwrap_or(MAX_TTL)
            .clamp(MIN_TTL, MAX_TTL)
    })
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn lifetime(values: &[&str]) -> i64 {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(CACHE_CONTROL, HeaderValue::from_str(value).unwrap());
        }
        cache_lifetime(&headers)
    }

    #[test]
    fn max_age_is_honoured_within_bounds() {
        assert_eq!(lifetime(&[]), DEFAULT_TTL);
        assert_eq!(lifetime(&["public"]), DEFAULT_TTL);
        assert_eq!(lifetime(&["public, max-age=600"]), 600);
        assert_eq!(lifetime(&["MAX-AGE = \"600\""]), 600);
        assert_eq!(lifetime(&["max-age=5"]), MIN_TTL);
        assert_eq!(lifetime(&["max-age=99999999999999999999"]), DEFAULT_TTL);
        assert_eq!(lifetime(&["max-age=9999999"]), MAX_TTL);
        assert_eq!(lifetime(&["max-age=banana"]), DEFAULT_TTL);
        assert_eq!(lifetime(&["max-age=600", "no-cache"]), MIN_TTL);
        assert_eq!(lifetime(&["max-age=600, max-age=120"]), 120);
    }

    #[test]
    fn plain_http_is_for_loopback_only() {
        for url in [
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
            "http://[::1]/jwks",
            "https://id.example/jwks",
        ] {
            assert!(RemoteJwks::new(url).is_ok(), "{url}");
        }
        assert!(matches!(
            RemoteJwks::new("http://id.example/jwks"),
            Err(ConfigError::InsecureJwksUrl)
        ));
        assert!(matches!(
            RemoteJwks::new("ftp://id.example/jwks"),
            Err(ConfigError::InvalidJwksUrl(_))
        ));
        assert!(matches!(
            RemoteJwks::new("not a url"),
            Err(ConfigError::InvalidJwksUrl(_))
        ));
    }
}
