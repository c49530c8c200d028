//! `GET /metrics`: Prometheus metrics (text format 0.0.4; what is counted is described in
//! [`crate::metrics`]).
//!
//! Off (404) unless the operator sets `metrics_token`; then the scraper must send it as
//! `Authorization: Bearer` (Prometheus: `authorization: {credentials: …}` in the scrape
//! config). Counts of logins, failures and reuse detections tell an outsider how the IdP is
//! used and attacked, so they are not for the public internet; and the admin token would give
//! the scraper power to end sessions, so the scraper has a token of its own that opens
//! nothing else. Only its SHA-256 is kept in memory and compared in constant time.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

use crate::AppState;

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(refusal) = super::bearer_refusal(state.metrics_token.as_ref(), &headers) {
        return refusal;
    }
    match state.metrics.encode() {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            text,
        )
            .into_response(),
        Err(_) => {
            tracing::error!("could not encode the metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
