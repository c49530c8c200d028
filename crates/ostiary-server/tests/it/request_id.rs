//! Request ids in responses. (Their place in log lines, and what the logs must never contain,
//! is tested in `tests/logs.rs`, a process of its own: capturing logs needs a global
//! subscriber.)

use reqwest::StatusCode;

use crate::harness::*;

fn request_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .expect("x-request-id")
        .to_str()
        .unwrap()
        .to_owned()
}

/// A generated id: a UUID.
fn is_generated(id: &str) -> bool {
    id.len() == 36 && id.bytes().filter(|b| *b == b'-').count() == 4
}

#[tokio::test]
async fn every_response_carries_a_fresh_request_id() {
    let app = spawn_app().await;
    let health = http().get(app.url("/healthz")).send().await.unwrap();
    let missing = http().get(app.url("/no/such/page")).send().await.unwrap();
    let refused = app.refresh("not-a-refresh-token").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let ids = [
        request_id(&health),
        request_id(&missing),
        request_id(&refused),
    ];
    assert!(ids.iter().all(|id| is_generated(id)), "{ids:?}");
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
}

#[tokio::test]
async fn a_valid_incoming_request_id_is_kept_and_an_invalid_one_replaced() {
    let app = spawn_app().await;
    let kept = http()
        .get(app.url("/healthz"))
        .header("x-request-id", "edge-7f3a:42/retry=1")
        .send()
        .await
        .unwrap();
    assert_eq!(request_id(&kept), "edge-7f3a:42/retry=1");
    let too_long = "x".repeat(129);
    for invalid in ["two words", too_long.as_str(), "quote\"and\\backslash ok?"] {
        let response = http()
            .get(app.url("/healthz"))
            .header("x-request-id", invalid)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(is_generated(&request_id(&response)), "{invalid}");
    }
    let non_ascii = http()
        .get(app.url("/healthz"))
        .header(
            "x-request-id",
            reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert!(is_generated(&request_id(&non_ascii)));
}
