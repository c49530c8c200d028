//! The revocation feed: how resource servers learn within seconds that a session ended or an
//! access token was revoked, with bounded state.
//!
//! Each entry names a `sid` (every token of that session is dead) or a `jti` (that one token
//! is), with `revoked_at` and `expires_at`: after `expires_at` (revoked_at plus the longest
//! access-token lifetime) no token it could concern is valid any more, so a reader forgets it.
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
/// Silence after which the stream sends a `keep-alive` event.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often a stream re-reads the feed even without a local notification, so that entries
/// written by another process (the CLI, another instance) arrive too.
const STREAM_REREAD: Duration = Duration::from_secs(2);

fn entry_json(entry: &RevocationEntry, retention: i64) -> Value {
    json!({
        "seq": entry.seq,
        "sid": entry.sid,
        "jti": entry.jti,
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
    let events = revocation_events(state, after);
    Ok(Sse::new(events)
        .keep_alive(
            KeepAlive::new()
                .interval(KEEP_ALIVE)
                .event(Event::default().event("keep-alive").data("{}")),
        )
        .into_response())
}

/// Reads the feed from `after` on, forever: what is there, then whatever this process
/// publishes (woken at once) or another process publishes (seen at the next re-read).
fn revocation_events(state: AppState, after: i64) -> impl Stream<Item = Result<Event, Infallible>> {
    let notifier = state.idp.revocation_notifier();
    stream::unfold(
        (state, notifier, after, Vec::<Event>::new()),
        |(state, notifier, mut cursor, mut pending)| async move {
            loop {
                if !pending.is_empty() {
                    let event = pending.remove(0);
                    return Some((Ok(event), (state, notifier, cursor, pending)));
                }
                // Register for the notification before reading, so nothing published in between
                // is missed.
                let notified = notifier.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
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
                    () = &mut notified => {}
                    () = tokio::time::sleep(STREAM_REREAD) => {}
                    // The server is shutting down: end the stream (readers reconnect elsewhere).
                    _ = stopping.wait_for(|stopping| *stopping) => return None,
                }
            }
        },
    )
}
