//! Liveness and readiness, for load balancers and orchestrators.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;

/// `GET /healthz`: the process is up and serving (liveness; never touches the database).
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database answers and its schema is the one this build expects (readiness:
/// take the instance out of the load balancer while this is 503). The reason is logged, not
/// sent: it may name the database.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.idp.store().check_ready().await {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(error) => {
            tracing::warn!(%error, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable"})),
            )
                .into_response()
        }
    }
}
