//! Following the identity provider's revocation feed, so that a logout reaches this resource
//! server within seconds instead of when the access token expires.
//!
//! A [`RevocationFeed`] reads `GET {feed}?after=CURSOR` (Ostiary's `/revocations`, advertised
//! as `ostiary_revocation_feed_endpoint` in the discovery document) and remembers the revoked
//! session ids (`sid`), token ids (`jti`) and withdrawn signing keys (`kid`) it lists, each
//! only until the entry's `expires_at`: after that no token it could concern is valid anyway.
//! Memory is therefore bounded by the revocations of one access-token lifetime, whatever the
//! uptime.
//!
//! A withdrawn `kid` (the identity provider's emergency rotation after a key compromise) is
//! also dropped at once from the JWKS cache of every [`Validator`](crate::Validator) using this
//! feed, and the next validation refetches the JWKS: tokens signed with the key are rejected
//! (`key_withdrawn`) from the moment the entry arrives, not when the cache would have
//! expired.
//!
//! [`RevocationFeed::spawn`] follows the IdP's Server-Sent Events stream (`{feed}/stream`, or
//! [`RevocationFeed::with_stream_url`]) in the background: it first reads the feed up to now,
//! then applies each entry the moment the IdP pushes it. While the stream cannot be opened it
//! polls instead, and tries the stream again. [`RevocationFeed::spawn_polling`] only polls
//! (for networks that cut long-lived connections); [`RevocationFeed::poll_once`] reads once
//! (tests, or a scheduler of your own). After an outage the next read resumes from the cursor,
//! so nothing is missed that is still within the retention window.
//!
//! When the feed cannot be read for longer than the allowed staleness (default 60 s):
//! - [`FailMode::Open`] (the default) keeps accepting tokens on the strength of their signature
//!   and expiry, with the revocations already known, and logs a warning: an IdP outage does not
//!   take the API down, and a token still expires within its short lifetime;
//! - [`FailMode::Closed`] rejects every token with
//!   [`ValidationError::RevocationFeedUnavailable`] (HTTP 503) until the feed is read again.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use crate::clock::{Clock, SystemClock};
use crate::error::{ConfigError, ValidationError};

/// What to do with tokens while the feed cannot be read. See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailMode {
    /// Keep accepting valid tokens (with the revocations already known). The default.
    #[default]
    Open,
    /// Reject every token until the feed is read again.
    Closed,
}

/// Default time between two background reads.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Default staleness after which the feed counts as unavailable.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(60);
/// Timeout of one read.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A stream silent for this long (the IdP sends a `keep-alive` event every 15 s) is dropped
/// and opened again.
const STREAM_SILENCE: Duration = Duration::from_secs(40);
/// Largest accepted stream event, bytes.
const MAX_EVENT_BYTES: usize = 64 * 1024;
/// Largest accepted response, bytes.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Why one read of the feed failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// The request failed or timed out.
    #[error("revocation feed request failed: {0}")]
    Http(String),
    /// The answer was not a feed page.
    #[error("revocation feed answer is invalid: {0}")]
    Invalid(String),
}

#[derive(Debug, Deserialize)]
struct Page {
    entries: Vec<Entry>,
    cursor: i64,
}

#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(default)]
    seq: i64,
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    expires_at: i64,
}

#[derive(Debug, Default)]
struct Revoked {
    sids: HashMap<String, i64>,
    jtis: HashMap<String, i64>,
    kids: HashMap<String, i64>,
    cursor: i64,
    last_success: Option<i64>,
}

impl Revoked {
    /// Adds an entry unless it has already expired. Returns the `kid` it withdraws, if it is
    /// news.
    fn remember(&mut self, entry: Entry, now: i64, margin: i64) -> Option<String> {
        if entry.expires_at.saturating_add(margin) <= now {
            return None;
        }
        if let Some(sid) = entry.sid {
            self.sids.insert(sid, entry.expires_at);
        }
        if let Some(jti) = entry.jti {
            self.jtis.insert(jti, entry.expires_at);
        }
        let kid = entry.kid?;
        self.kids
            .insert(kid.clone(), entry.expires_at)
            .is_none()
            .then_some(kid)
    }

    /// Forgets entries that no token can need any more: past `expires_at` plus the validators'
    /// leeway (a validator accepts a token until `exp + leeway`, so a revocation must outlive
    /// that too).
    fn prune(&mut self, now: i64, margin: i64) {
        self.sids
            .retain(|_, expires_at| expires_at.saturating_add(margin) > now);
        self.jtis
            .retain(|_, expires_at| expires_at.saturating_add(margin) > now);
        self.kids
            .retain(|_, expires_at| expires_at.saturating_add(margin) > now);
    }
}

struct Inner {
    url: reqwest::Url,
    stream_url: reqwest::Url,
    /// The client for the stream: no overall timeout (the connection is meant to stay open).
    stream_http: reqwest::Client,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    fail_mode: FailMode,
    max_staleness: i64,
    /// Seconds entries are kept past `expires_at`: the largest leeway of the validators using
    /// this feed ([`RevocationFeed::keep_for_leeway`]).
    margin: std::sync::atomic::AtomicI64,
    revoked: RwLock<Revoked>,
    /// One read at a time.
    reading: Mutex<()>,
    /// The cursor, announced after every successful read and every pushed entry.
    progress: tokio::sync::watch::Sender<i64>,
    /// The JWKS caches of the validators using this feed, told of withdrawn keys.
    key_caches: std::sync::Mutex<Vec<Weak<crate::cache::RemoteJwks>>>,
}

/// The revocations this resource server knows of, kept current from the IdP's feed. Cheap to
/// clone (shared state).
#[derive(Clone)]
pub struct RevocationFeed {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RevocationFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationFeed")
            .field("url", &self.inner.url.as_str())
            .field("fail_mode", &self.inner.fail_mode)
            .finish_non_exhaustive()
    }
}

impl RevocationFeed {
    /// A feed read from `url` (https, or http to a loopback host), fail-open, 60 s staleness,
    /// system clock. Nothing is read until [`poll_once`](Self::poll_once) or
    /// [`spawn`](Self::spawn).
    pub fn new(url: &str) -> Result<Self, ConfigError> {
        let url = reqwest::Url::parse(url).map_err(|_| ConfigError::InvalidFeedUrl)?;
        let loopback = crate::cache::is_loopback(&url);
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => return Err(ConfigError::InvalidFeedUrl),
        }
        let mut builder = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none());
        if loopback {
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(ConfigError::HttpClient)?;
        let mut stream_builder = reqwest::Client::builder()
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none());
        if loopback {
            stream_builder = stream_builder.no_proxy();
        }
        let stream_http = stream_builder.build().map_err(ConfigError::HttpClient)?;
        let mut stream_url = url.clone();
        stream_url.set_path(&format!("{}/stream", url.path().trim_end_matches('/')));
        Ok(Self {
            inner: Arc::new(Inner {
                url,
                stream_url,
                stream_http,
                http,
                clock: Arc::new(SystemClock),
                fail_mode: FailMode::Open,
                max_staleness: DEFAULT_MAX_STALENESS.as_secs() as i64,
                revoked: RwLock::default(),
                reading: Mutex::new(()),
                progress: tokio::sync::watch::Sender::new(0),
                margin: std::sync::atomic::AtomicI64::new(0),
                key_caches: std::sync::Mutex::new(Vec::new()),
            }),
        })
    }

    fn configure(mut self, change: impl FnOnce(&mut Inner)) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => change(inner),
            None => {
                tracing::warn!("RevocationFeed settings must be made before it is shared; ignored")
            }
        }
        self
    }

    /// Where [`spawn`](Self::spawn) opens the Server-Sent Events stream (default: the feed URL
    /// with `/stream` appended, as Ostiary serves it; the discovery document names it
    /// `ostiary_revocation_stream_endpoint`). Same rules as the feed URL.
    pub fn with_stream_url(self, url: &str) -> Result<Self, ConfigError> {
        let url = reqwest::Url::parse(url).map_err(|_| ConfigError::InvalidFeedUrl)?;
        let allowed = match url.scheme() {
            "https" => true,
            "http" => crate::cache::is_loopback(&url),
            _ => false,
        };
        if !allowed {
            return Err(ConfigError::InvalidFeedUrl);
        }
        Ok(self.configure(|inner| inner.stream_url = url))
    }

    /// Fail-open (default) or fail-closed when the feed is stale.
    pub fn with_fail_mode(self, mode: FailMode) -> Self {
        self.configure(|inner| inner.fail_mode = mode)
    }

    /// How long without a successful read before the feed counts as unavailable (default 60 s).
    pub fn with_max_staleness(self, staleness: Duration) -> Self {
        let seconds = i64::try_from(staleness.as_secs()).unwrap_or(i64::MAX);
        self.configure(|inner| inner.max_staleness = seconds)
    }

    /// The clock deciding when entries expire and when the feed is stale (default the system
    /// clock). Use the same clock as the [`Validator`](crate::Validator).
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        self.configure(|inner| inner.clock = clock)
    }

    /// Reads the feed from the cursor until it is drained, remembers the new entries and
    /// forgets expired ones. Returns how many entries were read.
    pub async fn poll_once(&self) -> Result<usize, FeedError> {
        let _one_at_a_time = self.inner.reading.lock().await;
        let mut read = 0;
        loop {
            let cursor = self.inner.revoked.read().await.cursor;
            let page = self.fetch(cursor).await?;
            let now = self.inner.clock.now_unix();
            let mut revoked = self.inner.revoked.write().await;
            // Read on while pages come, and once more after being sent back to the start.
            let more = (!page.entries.is_empty() && page.cursor > cursor) || page.cursor < cursor;
            read += page.entries.len();
            let margin = self.margin();
            let mut withdrawn = Vec::new();
            for entry in page.entries {
                withdrawn.extend(revoked.remember(entry, now, margin));
            }
            self.drop_from_caches(&withdrawn);
            // The IdP's cursor is authoritative, even when it goes back: after a reset of its
            // database it sends readers back to the start.
            revoked.cursor = page.cursor;
            revoked.last_success = Some(now);
            revoked.prune(now, margin);
            self.inner.progress.send_replace(revoked.cursor);
            if !more {
                return Ok(read);
            }
        }
    }

    async fn fetch(&self, cursor: i64) -> Result<Page, FeedError> {
        let mut url = self.inner.url.clone();
        url.query_pairs_mut()
            .append_pair("after", &cursor.to_string());
        let response = self
            .inner
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| FeedError::Http(e.to_string()))?;
        if !response.status().is_success() {
            return Err(FeedError::Http(format!("status {}", response.status())));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            return Err(FeedError::Invalid("response too large".into()));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| FeedError::Http(e.to_string()))?;
        if body.len() > MAX_RESPONSE_BYTES {
            return Err(FeedError::Invalid("response too large".into()));
        }
        serde_json::from_slice(&body).map_err(|e| FeedError::Invalid(e.to_string()))
    }

    /// Follows the feed in a background task (on the current tokio runtime) until every clone
    /// of this feed is dropped: reads it up to now, then keeps the IdP's event stream open and
    /// applies each revocation as it is pushed (typically within milliseconds of the logout).
    /// When the stream cannot be opened or breaks, the feed is polled every `interval` and the
    /// stream tried again after each poll. Errors are logged, never fatal.
    pub fn spawn(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let feed = RevocationFeed { inner };
                match feed.poll_once().await {
                    Ok(_) => match feed.open_stream().await {
                        Ok(response) => {
                            drop(feed);
                            if let Err(error) = follow(&weak, response).await {
                                tracing::info!(%error, "revocation stream ended; reconnecting");
                            }
                            continue;
                        }
                        Err(error) => {
                            tracing::warn!(%error, "could not open the revocation stream; polling")
                        }
                    },
                    Err(error) => {
                        tracing::warn!(%error, "could not read the revocation feed; will retry")
                    }
                }
                tokio::time::sleep(interval).await;
            }
        })
    }

    async fn open_stream(&self) -> Result<reqwest::Response, FeedError> {
        let cursor = self.cursor().await;
        let mut url = self.inner.stream_url.clone();
        url.query_pairs_mut()
            .append_pair("after", &cursor.to_string());
        let response = self
            .inner
            .stream_http
            .get(url)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| FeedError::Http(e.to_string()))?;
        if !response.status().is_success() {
            return Err(FeedError::Http(format!("status {}", response.status())));
        }
        Ok(response)
    }

    /// Applies one pushed entry (a `revocation` event), or notes that the stream is alive (a
    /// `keep-alive` event).
    async fn apply_event(&self, event: &eventsource_stream::Event) -> Result<(), FeedError> {
        let now = self.inner.clock.now_unix();
        let mut revoked = self.inner.revoked.write().await;
        if event.event == "revocation" {
            let entry: Entry =
                serde_json::from_str(&event.data).map_err(|e| FeedError::Invalid(e.to_string()))?;
            let seq = entry.seq;
            let margin = self.margin();
            let withdrawn = revoked.remember(entry, now, margin);
            self.drop_from_caches(withdrawn.as_slice());
            revoked.cursor = revoked.cursor.max(seq);
            self.inner.progress.send_replace(revoked.cursor);
        }
        revoked.last_success = Some(now);
        Ok(())
    }

    /// Reads the feed every `interval` in a background task (on the current tokio runtime)
    /// until every clone of this feed is dropped, without ever opening the event stream. Read
    /// errors are logged and retried at the next tick.
    pub fn spawn_polling(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let feed = RevocationFeed { inner };
                if let Err(error) = feed.poll_once().await {
                    tracing::warn!(%error, "could not read the revocation feed; will retry");
                }
            }
        })
    }

    /// Whether a token with this `sid` and `jti` is still good at `now`, as far as the feed
    /// knows.
    pub async fn check(
        &self,
        sid: Option<&str>,
        jti: &str,
        now: i64,
    ) -> Result<(), ValidationError> {
        let revoked = self.inner.revoked.read().await;
        let margin = self.margin();
        let live = |map: &HashMap<String, i64>, key: &str| {
            map.get(key)
                .is_some_and(|expires_at| expires_at.saturating_add(margin) > now)
        };
        if sid.is_some_and(|sid| live(&revoked.sids, sid)) || live(&revoked.jtis, jti) {
            return Err(ValidationError::Revoked);
        }
        let stale = revoked
            .last_success
            .is_none_or(|at| now.saturating_sub(at) > self.inner.max_staleness);
        if stale {
            match self.inner.fail_mode {
                FailMode::Closed => return Err(ValidationError::RevocationFeedUnavailable),
                FailMode::Open => {
                    tracing::warn!("revocation feed is stale; accepting the token (fail-open)")
                }
            }
        }
        Ok(())
    }

    /// Whether the IdP withdrew the signing key `kid` (and the entry still matters at `now`).
    pub async fn is_key_withdrawn(&self, kid: &str, now: i64) -> bool {
        let revoked = self.inner.revoked.read().await;
        revoked
            .kids
            .get(kid)
            .is_some_and(|expires_at| expires_at.saturating_add(self.margin()) > now)
    }

    /// Lets a validator's JWKS cache hear of withdrawn keys (see the module documentation).
    pub(crate) fn watch_keys(&self, cache: &Arc<crate::cache::RemoteJwks>) {
        let mut caches = self
            .inner
            .key_caches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        caches.retain(|weak| weak.strong_count() > 0);
        caches.push(Arc::downgrade(cache));
    }

    fn drop_from_caches(&self, kids: &[String]) {
        if kids.is_empty() {
            return;
        }
        let caches = self
            .inner
            .key_caches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for cache in caches.iter().filter_map(Weak::upgrade) {
            for kid in kids {
                cache.withdraw(kid);
            }
        }
    }

    fn margin(&self) -> i64 {
        self.inner.margin.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Keeps every entry `leeway` longer than its `expires_at`, because a validator with that
    /// leeway accepts tokens until `exp + leeway`. [`Validator::with_revocation_feed`] calls this
    /// with its own leeway; the largest one wins.
    ///
    /// [`Validator::with_revocation_feed`]: crate::Validator::with_revocation_feed
    pub fn keep_for_leeway(&self, leeway: Duration) {
        let seconds = i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX);
        self.inner
            .margin
            .fetch_max(seconds, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many revocations are remembered now (the memory bound: revocations within one
    /// access-token lifetime).
    pub async fn len(&self) -> usize {
        let revoked = self.inner.revoked.read().await;
        revoked.sids.len() + revoked.jtis.len() + revoked.kids.len()
    }

    /// Whether no revocation is remembered.
    pub async fn is_empty(&self) -> bool {
        self.len().await == 0
    }

    /// A receiver that is notified, with the cursor, after every successful read of the feed
    /// and every entry pushed by the stream: to react to revocations (metrics, caches of your
    /// own) or to wait for one in a test.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<i64> {
        self.inner.progress.subscribe()
    }

    /// The cursor the next read continues from.
    pub async fn cursor(&self) -> i64 {
        self.inner.revoked.read().await.cursor
    }
}

/// Applies the events of an open stream until it ends, errs, or stays silent too long, or the
/// feed is dropped.
async fn follow(weak: &Weak<Inner>, response: reqwest::Response) -> Result<(), FeedError> {
    use eventsource_stream::Eventsource;
    use futures_util::StreamExt;

    let mut events = response.bytes_stream().eventsource();
    loop {
        let next = tokio::time::timeout(STREAM_SILENCE, events.next())
            .await
            .map_err(|_| FeedError::Http("the stream went silent".into()))?;
        let event = match next {
            None => return Err(FeedError::Http("the IdP closed the stream".into())),
            Some(Err(e)) => return Err(FeedError::Http(e.to_string())),
            Some(Ok(event)) => event,
        };
        if event.data.len() > MAX_EVENT_BYTES {
            return Err(FeedError::Invalid("stream event too large".into()));
        }
        let Some(inner) = weak.upgrade() else {
            return Ok(());
        };
        RevocationFeed { inner }.apply_event(&event).await?;
    }
}
