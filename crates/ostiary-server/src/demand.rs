//! Counts every request in flight for the password hasher, which paces sign-ins' hashes
//! while other requests are being served (`ostiary_core::hashing`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use ostiary_core::hashing::Demand;

/// Middleware: the request counts as in flight until its response is made. It runs inside
/// [`crate::completion::run_to_completion`]'s task, so a request whose client went away is
/// counted until its handler ends.
pub async fn count_in_flight(
    State(demand): State<Arc<Demand>>,
    request: Request,
    next: Next,
) -> Response {
    let _serving = demand.serving();
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_request_is_counted_while_its_handler_runs_and_not_after() {
        let demand = Arc::new(Demand::default());
        let app = Router::new()
            .route(
                "/",
                get({
                    let demand = Arc::clone(&demand);
                    move || async move { demand.others().to_string() }
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&demand),
                count_in_flight,
            ));
        let request = Request::builder().uri("/").body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), 64)
            .await
            .unwrap();
        assert_eq!(&body[..], b"1", "the handler saw its own request in flight");
        assert_eq!(
            demand.others(),
            0,
            "nothing is in flight once it was answered"
        );
    }
}
