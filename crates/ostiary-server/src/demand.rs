//! Counts every request in flight for the password hasher, which paces sign-ins' hashes
//! while other requests are being served (`ostiary_core::hashing`).
//!
//! A request counts once its body has been received: one whose client sends its body slowly
//! (or never) costs the server nothing meanwhile, and must not make the hashes wait.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use ostiary_core::hashing::{Demand, Serving};

/// Middleware: the request counts as in flight from the end of its body (at once, without
/// one) until its response is made. It runs inside
/// [`crate::completion::run_to_completion`]'s task, so a request whose client went away is
/// counted until its handler ends.
pub async fn count_in_flight(
    State(demand): State<Arc<Demand>>,
    request: Request,
    next: Next,
) -> Response {
    let serving = Arc::new(Mutex::new(None));
    let (parts, body) = request.into_parts();
    let body = if http_body::Body::is_end_stream(&body) {
        start(&serving, &demand);
        body
    } else {
        Body::new(CountedBody {
            inner: body,
            demand: Arc::clone(&demand),
            serving: Arc::clone(&serving),
        })
    };
    let response = next.run(Request::from_parts(parts, body)).await;
    if let Ok(mut slot) = serving.lock() {
        slot.take();
    }
    response
}

type Slot = Arc<Mutex<Option<Serving>>>;

fn start(slot: &Slot, demand: &Arc<Demand>) {
    if let Ok(mut slot) = slot.lock() {
        slot.get_or_insert_with(|| demand.serving());
    }
}

/// A request body that starts its request's count when it ends.
struct CountedBody {
    inner: Body,
    demand: Arc<Demand>,
    serving: Slot,
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || this.inner.is_end_stream() {
            start(&this.serving, &this.demand);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::{get, post};
    use tower::ServiceExt;

    use super::*;

    fn app(demand: &Arc<Demand>) -> Router {
        let seen = {
            let demand = Arc::clone(demand);
            move || async move { demand.others().to_string() }
        };
        let read_then_seen = {
            let demand = Arc::clone(demand);
            move |request: Request| async move {
                let before = demand.others();
                let _ = axum::body::to_bytes(request.into_body(), 1024).await;
                format!("{before} {}", demand.others())
            }
        };
        Router::new()
            .route("/", get(seen))
            .route("/form", post(read_then_seen))
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(demand),
                count_in_flight,
            ))
    }

    async fn text(response: Response) -> String {
        let body = axum::body::to_bytes(response.into_body(), 64)
            .await
            .unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_request_is_counted_while_its_handler_runs_and_not_after() {
        let demand = Arc::new(Demand::default());
        let request = Request::builder().uri("/").body(Body::empty()).unwrap();
        let response = app(&demand).oneshot(request).await.unwrap();
        assert_eq!(text(response).await, "1", "the handler saw its own request");
        assert_eq!(
            demand.others(),
            0,
            "nothing is in flight once it was answered"
        );
    }

    #[tokio::test]
    async fn a_request_with_a_body_is_counted_from_the_body_s_end() {
        let demand = Arc::new(Demand::default());
        let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(1);
        let chunks = futures_util::stream::unfold(receiver, |mut receiver| async move {
            let chunk = receiver.recv().await?;
            Some((Ok::<_, std::io::Error>(chunk), receiver))
        });
        let request = Request::builder()
            .method("POST")
            .uri("/form")
            .body(Body::from_stream(chunks))
            .unwrap();
        let call = tokio::spawn(app(&demand).oneshot(request));
        sender.send(Bytes::from_static(b"a=1")).await.unwrap();
        // The handler has the first chunk; the body has not ended.
        sender.send(Bytes::from_static(b"&b=2")).await.unwrap();
        assert_eq!(demand.others(), 0, "a body still arriving is not counted");
        drop(sender);
        let response = call.await.unwrap().unwrap();
        assert_eq!(
            text(response).await,
            "0 1",
            "counted once its body had ended"
        );
        assert_eq!(demand.others(), 0);
    }
}
