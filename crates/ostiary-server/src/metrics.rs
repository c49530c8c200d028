//! Prometheus metrics: HTTP requests and security events, served at `GET /metrics` (see
//! [`crate::endpoints::metrics`]) in the Prometheus text format (version 0.0.4).
//!
//! # Design
//!
//! - **One registry per [`crate::Application`]**, owned by [`Metrics`] (the official
//!   `prometheus-client` crate, which has no global registry). Several applications in one
//!   process (the test suite) never share or fight over counters, and nothing is global.
//! - **HTTP**: [`track_http`] runs around every route and counts requests by method, route
//!   (axum's matched route such as `/token`, never the raw path; `unmatched` for the fallback)
//!   and status code, and times them (to the response head: a stream's lifetime is not in it)
//!   by method, route and status class.
//! - **Security events** are counted from the audit log: the IdP tells [`Metrics`] (an
//!   [`AuditObserver`]) of every event appended, exactly once, including those the store
//!   writes inside its own transactions. Every kind is counted in
//!   `ostiary_audit_events_total{kind}`; the events operators alert on have their own
//!   counters (logins, rotations, grace replays, reuse detections, session endings, access
//!   token revocations, back-channel logouts, signing-key rotations).
//! - **Bounded labels**: kinds, categories (reasons), methods, routes and status codes only;
//!   never a user, session, client or IP. A category that is not a short snake_case word is
//!   counted as `other`.
//!
//! Counters are per process: several instances are summed by Prometheus, and events written
//! by the `ostiary` CLI in another process are not counted (the audit log has them all).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use ostiary_core::audit::{AuditKind, AuditObserver};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of `ostiary_http_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

/// Labels of `ostiary_http_request_duration_seconds`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    method: &'static str,
    route: String,
    status_class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

type DurationFamily = Family<DurationLabels, Histogram, fn() -> Histogram>;

/// Latency buckets, seconds: from a cached JWKS (sub-millisecond) to a login under load
/// (Argon2id, tens of milliseconds per hash, queued behind others).
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Why logins fail (`details.reason` of `login_failed`), registered up front so that their
/// series exist (at 0) before the first failure.
const LOGIN_FAILURE_REASONS: [&str; 5] = [
    "wrong_credentials",
    "account_disabled",
    "throttled",
    "session_limit",
    "client_session_limit",
];

/// The metrics of one application, and its registry. Cheap to share (`Arc`).
pub struct Metrics {
    registry: Registry,
    http_requests: Family<RequestLabels, Counter>,
    http_duration: DurationFamily,
    audit_events: Family<KindLabels, Counter>,
    logins_succeeded: Counter,
    login_failures: Family<ReasonLabels, Counter>,
    refresh_rotations: Counter,
    refresh_grace_replays: Counter,
    refresh_recoveries: Counter,
    refresh_reuse_detections: Counter,
    sessions_ended: Family<ReasonLabels, Counter>,
    access_tokens_revoked: Counter,
    backchannel_logouts: Family<OutcomeLabels, Counter>,
    signing_key_rotations: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered (security counters at 0).
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "ostiary_http_requests",
            "HTTP requests by method, matched route and status code",
            http_requests.clone(),
        );
        let http_duration: DurationFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "ostiary_http_request_duration_seconds",
            "Time to the response head, seconds, by method, matched route and status class",
            http_duration.clone(),
        );
        let audit_events = Family::<KindLabels, Counter>::default();
        registry.register(
            "ostiary_audit_events",
            "Events appended to the audit log by this process, by kind",
            audit_events.clone(),
        );
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let logins_succeeded = counter(
            &mut registry,
            "ostiary_logins_succeeded",
            "Successful logins (sessions created)",
        );
        let login_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "ostiary_login_failures",
            "Refused logins by reason: wrong_credentials (also unknown users), \
             account_disabled, throttled, session_limit, client_session_limit",
            login_failures.clone(),
        );
        let refresh_rotations = counter(
            &mut registry,
            "ostiary_refresh_rotations",
            "Refresh tokens rotated",
        );
        let refresh_grace_replays = counter(
            &mut registry,
            "ostiary_refresh_grace_replays",
            "Previous refresh tokens presented again within the grace window (same successor \
             returned)",
        );
        let refresh_recoveries = counter(
            &mut registry,
            "ostiary_refresh_recoveries",
            "Previous refresh tokens presented after the grace window while their successor was \
             never used (a lost response): the same successor returned, marked reissued",
        );
        let refresh_reuse_detections = counter(
            &mut registry,
            "ostiary_refresh_token_reuse_detections",
            "Refresh-token reuse (theft) detected; each ended a session",
        );
        let sessions_ended = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "ostiary_sessions_ended",
            "Sessions ended (logouts, revocations, expiry, evictions, reuse) by reason",
            sessions_ended.clone(),
        );
        let access_tokens_revoked = counter(
            &mut registry,
            "ostiary_access_tokens_revoked",
            "Access tokens revoked (RFC 7009)",
        );
        let backchannel_logouts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "ostiary_backchannel_logouts",
            "Back-channel logout delivery attempts by outcome: delivered, retry, gave_up",
            backchannel_logouts.clone(),
        );
        let signing_key_rotations = counter(
            &mut registry,
            "ostiary_signing_key_rotations",
            "Signing keys generated after the first start (audit kind signing_key_generated)",
        );
        let metrics = Self {
            registry,
            http_requests,
            http_duration,
            audit_events,
            logins_succeeded,
            login_failures,
            refresh_rotations,
            refresh_grace_replays,
            refresh_recoveries,
            refresh_reuse_detections,
            sessions_ended,
            access_tokens_revoked,
            backchannel_logouts,
            signing_key_rotations,
        };
        // Series that exist before their first event, so that rates and alerts see a 0.
        for kind in AuditKind::ALL {
            metrics.audit_events.get_or_create_owned(&KindLabels {
                kind: kind.as_str(),
            });
        }
        for reason in LOGIN_FAILURE_REASONS {
            metrics.login_failures.get_or_create_owned(&ReasonLabels {
                reason: reason.to_owned(),
            });
        }
        for outcome in ["delivered", "retry", "gave_up"] {
            metrics
                .backchannel_logouts
                .get_or_create_owned(&OutcomeLabels { outcome });
        }
        metrics
    }

    /// The Prometheus text exposition (version 0.0.4) of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// Records one HTTP request.
    pub fn record_request(
        &self,
        method: &http::Method,
        route: Option<&str>,
        status: http::StatusCode,
        elapsed: Duration,
    ) {
        let method = method_label(method);
        let route = route.unwrap_or("unmatched").to_owned();
        self.http_duration
            .get_or_create(&DurationLabels {
                method,
                route: route.clone(),
                status_class: status_class(status),
            })
            .observe(elapsed.as_secs_f64());
        self.http_requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status: status.as_u16(),
            })
            .inc();
    }
}

impl AuditObserver for Metrics {
    fn observe(&self, kind: AuditKind, category: Option<&str>) {
        self.audit_events
            .get_or_create(&KindLabels {
                kind: kind.as_str(),
            })
            .inc();
        self.count_security_event(kind, category);
    }

    fn observe_aggregated(&self, kind: AuditKind, category: Option<&str>) {
        // Not in the log on its own (so not in `ostiary_audit_events_total`), but it happened.
        self.count_security_event(kind, category);
    }
}

impl Metrics {
    /// Moves the security counter of an event of `kind` (whether audited alone or counted
    /// into an aggregate).
    fn count_security_event(&self, kind: AuditKind, category: Option<&str>) {
        let reason = || ReasonLabels {
            reason: bounded(category).to_owned(),
        };
        match kind {
            AuditKind::LoginSucceeded => {
                self.logins_succeeded.inc();
            }
            AuditKind::LoginFailed => {
                self.login_failures.get_or_create(&reason()).inc();
            }
            AuditKind::RefreshRotated => {
                self.refresh_rotations.inc();
            }
            AuditKind::RefreshReplayedWithinGrace => {
                self.refresh_grace_replays.inc();
            }
            AuditKind::RefreshRecovered => {
                self.refresh_recoveries.inc();
            }
            AuditKind::RefreshTokenReuseDetected => {
                self.refresh_reuse_detections.inc();
            }
            AuditKind::SessionEnded => {
                self.sessions_ended.get_or_create(&reason()).inc();
            }
            AuditKind::AccessTokenRevoked => {
                self.access_tokens_revoked.inc();
            }
            AuditKind::BackchannelDelivered => {
                self.backchannel_logouts
                    .get_or_create(&OutcomeLabels {
                        outcome: "delivered",
                    })
                    .inc();
            }
            AuditKind::BackchannelFailed => {
                let outcome = if category == Some("gave_up") {
                    "gave_up"
                } else {
                    "retry"
                };
                self.backchannel_logouts
                    .get_or_create(&OutcomeLabels { outcome })
                    .inc();
            }
            // The keys made on a database's first start are not rotations; every later
            // `signing_key_generated` event (whatever appends it through the IdP) is.
            AuditKind::SigningKeyGenerated if category != Some("first_start") => {
                self.signing_key_rotations.inc();
            }
            _ => {}
        }
    }
}

/// The category as a label value: itself if it is a snake_case word (`a-z`, `0-9`, `_`) of
/// at most 40 characters (as every category the code writes is), else `other`; `none` when absent.
fn bounded(category: Option<&str>) -> &str {
    match category {
        None => "none",
        Some(c)
            if !c.is_empty()
                && c.len() <= 40
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
        {
            c
        }
        Some(_) => "other",
    }
}

fn method_label(method: &http::Method) -> &'static str {
    use http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

fn status_class(status: http::StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Middleware counting and timing every request (see the module documentation). It must run
/// inside the router (`Router::layer`), where the matched route is known.
pub async fn track_http(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let start = Instant::now();
    let response = next.run(request).await;
    metrics.record_request(
        &method,
        route.as_deref(),
        response.status(),
        start.elapsed(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_become_bounded_label_values() {
        assert_eq!(bounded(Some("wrong_credentials")), "wrong_credentials");
        assert_eq!(bounded(None), "none");
        assert_eq!(bounded(Some("")), "other");
        assert_eq!(bounded(Some("user 42")), "other");
        assert_eq!(bounded(Some(&"a".repeat(41))), "other");
    }

    #[test]
    fn the_exposition_names_counters_with_total_and_starts_security_series_at_zero() {
        let metrics = Metrics::new();
        metrics.observe(AuditKind::LoginFailed, Some("wrong_credentials"));
        metrics.observe(AuditKind::SigningKeyGenerated, Some("first_start"));
        metrics.observe(AuditKind::SigningKeyGenerated, None);
        metrics.record_request(
            &http::Method::GET,
            Some("/jwks.json"),
            http::StatusCode::OK,
            Duration::from_millis(3),
        );
        let text = metrics.encode().unwrap();
        assert!(text.contains("ostiary_login_failures_total{reason=\"wrong_credentials\"} 1\n"));
        assert!(text.contains("ostiary_login_failures_total{reason=\"throttled\"} 0\n"));
        assert!(text.contains("ostiary_audit_events_total{kind=\"signing_key_generated\"} 2\n"));
        assert!(text.contains("ostiary_signing_key_rotations_total 1\n"));
        assert!(text.contains("ostiary_refresh_rotations_total 0\n"));
        assert!(text.contains(
            "ostiary_http_requests_total{method=\"GET\",route=\"/jwks.json\",status=\"200\"} 1\n"
        ));
        assert!(text.contains("ostiary_http_request_duration_seconds_bucket{method=\"GET\",route=\"/jwks.json\",status_class=\"2xx\",le=\"0.005\"} 1\n"));
    }
}
