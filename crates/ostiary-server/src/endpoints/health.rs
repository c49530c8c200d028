//! Liveness.

use axum::Json;
use serde_json::{Value, json};

/// `GET /healthz`: the process is up and serving.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
