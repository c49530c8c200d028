//! The revocation feed: how resource servers learn within seconds that a session ended or an
//! access token was revoked, with bounded state.
//!
//! Each entry names a `sid` (every token of that session is dead), a `jti` (that one token
//! is), or a `kid` (a signing key was withdrawn by an emergency rotation: no token it signed
//! is to be trusted, and a JWKS cached before is stale), with `revoked_at` and `expires_at`:
//! after `expires_at` (revoked_at plus the longest access-token lifetime) no token it could
//! concern is valid any more, so a reader forgets it.
//! Entries have a strictly increasing `seq`; readers resume from the last `seq` they saw.
//!
//! - `GET /revocations?after=SEQ[&limit=N]`: a page of entries as JSON (polling).
//! - `GET /revocations/stream?after=SEQ`: Server-Sent Events, one `revocation` event per entry
//!   with `id: SEQ` (so `Last-Event-ID` resumes after a reconnect), and a `keep-alive` event
//!   (data `{}`, no id) after 15 s without one, so that a reader can tell a quiet feed from a
//!   dead connection (SSE comments are invisible to most client libraries).
//!
//! The feed is public and unsigned. It carries only random session and token identifiers (no
//! user, client or reason beyond a category), which reveal nothing but that *some* session
//! ended; its integrity comes from the same TLS connection that authenticates the JWKS, and a
//! resource server already trusts that. A forged entry could at worst reject tokens, never
//! accept one.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use http::HeaderMap;
use ostiary_core::idp::RevocationPage;
use ostiary_core::store::RevocationEntry;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::TokenEndpointError;
use crate::params::Params;

/// Most entries in one page or one stream read.
const PAGE_LIMIT: u32 = 1000;
/// Default of the most revocation streams one instance keeps open; beyond, `/revocations/stream`
/// answers 503 and readers poll `/revocations` (as `ostiary-verify` does by itself).
pub const MAX_STREAMS: usize = 1000;

/// What the streams of one instance share: the feed's latest `seq`, re-read by one task
/// ([`follow_head`]) rather than by every stream, and the permits bounding how many streams
/// are open. An idle stream costs no database read.
#[derive(Debug, Clone)]
pub struct FeedHead {
    head: tokio::sync::watch::Sender<i64>,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

impl FeedHead {
    /// No stream yet, head unknown (0); at most `max_streams` open at once.
    pub fn new(max_streams: usize) -> Self {
        Self {
            head: tokio::sync::watch::Sender::new(0),
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(max_streams)),
        }
    }
}

/// Re-reads the feed's latest `seq` when this process (or, through the store's notifications,
/// another instance) publishes, and every [`STREAM_REREAD`] for writers it cannot hear (the
/// CLI on SQLite); wakes the streams when something may have been published. When new
/// entries withdraw a signing key (an emergency rotation anywhere), reloads this instance's
/// keys at once, so that it stops signing with, publishing and accepting the withdrawn key.
/// Stops at shutdown.
pub async fn follow_head(
    idp: ostiary_core::Idp,
    feed: FeedHead,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let notifier = idp.revocation_notifier();
    let mut announced = false;
    // The feed's head when this instance last looked for withdrawn keys.
    let mut checked: Option<i64> = None;
    loop {
        let notified = notifier.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match idp.store().latest_revocation_seq().await {
            Ok(seq) => {
                if checked.is_some_and(|at| seq != at) {
                    reload_keys_if_withdrawn(&idp, checked.unwrap_or_default()).await;
                }
                checked = Some(seq);
                if announced {
                    // After a notification, wake the streams even if the number did not move
                    // (it may have been taken before the notifying transaction committed).
                    feed.head.send_replace(seq);
                } else {
                    feed.head
                        .send_if_modified(|head| std::mem::replace(head, seq) != seq);
                }
            }
            Err(e) => tracing::warn!(error = %e, "revocation streams could not read the feed"),
        }
        tokio::select! {
            () = &mut notified => announced = true,
            () = tokio::time::sleep(STREAM_REREAD) => announced = false,
            _ = stopping.wait_for(|stopping| *stopping) => return,
        }
    }
}
/// Reloads the signing keys if the feed's entries after `after` withdraw one.
async fn reload_keys_if_withdrawn(idp: &ostiary_core::Idp, after: i64) {
    let page = match idp.revocation_feed(after, PAGE_LIMIT).await {
        Ok(page) => page,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the feed for withdrawn keys");
            return;
        }
    };
    // A reset feed (cursor sent back to 0), or more entries than a page: reload to be safe.
    let withdrawn = page.cursor < after
        || page.entries.len() >= PAGE_LIMIT as usize
        || page.entries.iter().any(|e| e.kid.is_some());
    if withdrawn {
        match idp.maintain_keys().await {
            Ok(()) => tracing::info!("reloaded the signing keys after a key withdrawal"),
            Err(e) => {
                tracing::error!(error = %e, "could not reload the signing keys after a key withdrawal")
            }
        }
    }
}

/// Silence after which the stream sends a `keep-alive` event.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often the feed's head is re-read even without a notification, so that entries written
/// by a process this one cannot hear (the CLI on SQLite) arrive too, withdrawn keys included.
pub const STREAM_REREAD: Duration = Duration::from_secs(1);

fn entry_json(entry: &RevocationEntry, retention: i64) -> Value {
    json!({
        "seq": entry.seq,
        "sid": entry.sid,
        "jti": entry.jti,
        "kid": entry.kid,
        "revoked_at": entry.revoked_at,
        "expires_at": entry.revoked_at + retention,
        "reason": entry.reason,
    })
}

fn cursor_from(params: &Params, headers: &HeaderMap) -> Result<i64, TokenEndpointError> {
    let text = params
        .get("after")
        .or_else(|| headers.get("last-event-id").and_then(|v| v.to_str().ok()));
    match text {
        None => Ok(0),
        Some(text) => text.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            TokenEndpointError::invalid_request("after must be a non-negative integer")
        }),
    }
}

/// `GET /revocations`.
pub async fn poll(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, TokenEndpointError> {
    let params = Params::from_query(query.as_deref())?;
    let after = cursor_from(&params, &headers)?;
    let limit = match params.get("limit") {
        None => PAGE_LIMIT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=PAGE_LIMIT).contains(n))
            .ok_or_else(|| {
                TokenEndpointError::invalid_request(format!("limit must be 1 to {PAGE_LIMIT}"))
            })?,
    };
    let page = state.idp.revocation_feed(after, limit).await?;
    let RevocationPage {
        entries,
        cursor,
        retention,
        now,
    } = page;
    let body = json!({
        "entries": entries.iter().map(|e| entry_json(e, retention)).collect::<Vec<_>>(),
        "cursor": cursor,
        "retention": retention,
        "now": now,
    });
    Ok(([(http::header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// `GET /revocations/stream`.
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, TokenEndpointError> {
    let params = Params::from_query(query.as_deref())?;
    let after = cursor_from(&params, &headers)?;
    let Ok(permit) = state.feed.permits.clone().try_acquire_owned() else {
        return Ok((
            http::StatusCode::SERVICE_UNAVAILABLE,
            [(http::header::RETRY_AFTER, "30")],
            Json(json!({
                "error": "temporarily_unavailable",
                "error_description": "too many open revocation streams; poll /revocations instead",
            })),
        )
            .into_response());
    };
    let events = revocation_events(state, after, permit);
    Ok(Sse::new(events)
        .keep_alive(
            KeepAlive::new()
                .interval(KEEP_ALIVE)
                .event(Event::default().event("keep-alive").data("{}")),
        )
        .into_response())
}

/// Reads the feed from `after` on, forever: what is there, then whatever is published, read
/// when the shared head moves (see [`FeedHead`]). Holds its permit while open.
fn revocation_events(
    state: AppState,
    after: i64,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let head = state.feed.head.subscribe();
    stream::unfold(
        (state, head, permit, after, Vec::<Event>::new()),
        |(state, mut head, permit, mut cursor, mut pending)| async move {
            loop {
                if !pending.is_empty() {
                    let event = pending.remove(0);
                    return Some((Ok(event), (state, head, permit, cursor, pending)));
                }
                // Mark the head seen before reading, so a move in between wakes us again.
                head.mark_unchanged();
                match state.idp.revocation_feed(cursor, PAGE_LIMIT).await {
                    Ok(page) => {
                        cursor = page.cursor;
                        pending = page
                            .entries
                            .iter()
                            .map(|e| {
                                Event::default()
                                    .event("revocation")
                                    .id(e.seq.to_string())
                                    .data(entry_json(e, page.retention).to_string())
                            })
                            .collect();
                        if !pending.is_empty() {
                            continue;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "revocation stream could not read the feed")
                    }
                }
                let mut stopping = state.stopping.clone();
                tokio::select! {
                    changed = head.changed() => if changed.is_err() { return None },
                    // The server is shutting down: end the stream (readers reconnect elsewhere).
                    _ = stopping.wait_for(|stopping| *stopping) => return None,
                }
            }
        },
    )
}
