//! Every request runs to completion, whether or not its client waits for the answer.
//!
//! When a client disconnects mid-request, hyper drops the future that was computing its
//! response. A handler dropped between two statements of a transaction would leave that work
//! half-done on its database connection (sqlx rolls it back when the connection is next used,
//! and logs "there is already a transaction in progress" meanwhile), and one dropped after a
//! rotation was committed but before its audit event or access-token record would be harder
//! still to reason about. [`run_to_completion`] runs each handler as a task of its own that
//! the connection only awaits: dropping the connection drops the wait, not the work. The
//! answer of a finished handler whose client left is discarded.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// Middleware: runs the rest of the stack for this request on its own task (see the module
/// doc). A handler that panics is answered 500 with an empty body and logged.
pub async fn run_to_completion(request: Request, next: Next) -> Response {
    match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "a request handler failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::routing::get;
    use tokio::sync::{Notify, oneshot};
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_handler_finishes_after_its_caller_went_away() {
        let gate = Arc::new(Notify::new());
        let (started_tx, started) = oneshot::channel::<()>();
        let started_tx = Arc::new(Mutex::new(Some(started_tx)));
        let (finished_tx, finished) = oneshot::channel::<()>();
        let finished_tx = Arc::new(Mutex::new(Some(finished_tx)));
        let app = Router::new()
            .route(
                "/",
                get({
                    let gate = Arc::clone(&gate);
                    move || async move {
                        if let Some(tx) = started_tx.lock().unwrap().take() {
                            let _ = tx.send(());
                        }
                        gate.notified().await;
                        if let Some(tx) = finished_tx.lock().unwrap().take() {
                            let _ = tx.send(());
                        }
                        "done"
                    }
                }),
            )
            .layer(axum::middleware::from_fn(run_to_completion));

        let request = Request::builder()
            .uri("/")
            .body(axum::body::Body::empty())
            .unwrap();
        let call = tokio::spawn(app.oneshot(request));
        started.await.unwrap();
        // The caller goes away while the handler is in the middle of its work.
        call.abort();
        assert!(call.await.unwrap_err().is_cancelled());
        gate.notify_one();
        finished
            .await
            .expect("the handler ran to its end without anyone waiting for it");
    }

    #[tokio::test]
    async fn a_panicking_handler_is_answered_500() {
        let app = Router::new()
            .route(
                "/",
                get(|| async {
                    if true {
                        panic!("boom");
                    }
                    "unreachable"
                }),
            )
            .layer(axum::middleware::from_fn(run_to_completion));
        let request = Request::builder()
            .uri("/")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
