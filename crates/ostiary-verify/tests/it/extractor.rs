//! The axum extractor, driven through a `Router` with `oneshot`.

use axum::Router;
use axum::body::Body;
use axum::extract::FromRef;
use axum::http::{Request, Response, StatusCode, header};
use axum::routing::get;
use ostiary_verify::Validator;
use ostiary_verify::extract::VerifiedClaims;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::harness::*;

#[derive(Clone)]
struct AppState {
    validator: Validator,
}

impl FromRef<AppState> for Validator {
    fn from_ref(state: &AppState) -> Self {
        state.validator.clone()
    }
}

async fn whoami(VerifiedClaims(claims): VerifiedClaims) -> String {
    claims.sub
}

fn app(validator: Validator) -> Router {
    Router::new()
        .route("/me", get(whoami))
        .with_state(AppState { validator })
}

async fn call(app: Router, authorization: Option<&str>) -> (Response<Body>, Value) {
    let mut request = Request::get("/me");
    if let Some(authorization) = authorization {
        request = request.header(header::AUTHORIZATION, authorization);
    }
    let response = app
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024).await.unwrap();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    (Response::from_parts(parts, Body::empty()), json)
}

fn challenge(response: &Response<Body>) -> Option<&str> {
    response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|value| value.to_str().unwrap())
}

#[tokio::test]
async fn a_valid_bearer_token_reaches_the_handler() {
    let key = TestKey::ed25519("k1");
    let token = key.token(&claims());
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let (response, body) = call(
            app(static_validator(&[&key])),
            Some(&format!("{scheme} {token}")),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
        assert_eq!(body, json!("alice"));
    }
}

#[tokio::test]
async fn a_missing_token_gets_a_bare_bearer_challenge() {
    let key = TestKey::ed25519("k1");
    for authorization in [None, Some("Basic YWxpY2U6c2VjcmV0")] {
        let (response, body) = call(app(static_validator(&[&key])), authorization).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(challenge(&response), Some("Bearer"));
        assert_eq!(
            body,
            json!({ "error": "unauthorized", "reason": "missing_token" })
        );
    }
    let with_realm = static_validator(&[&key]).with_realm("ostiary demo");
    let (response, _) = call(app(with_realm), None).await;
    assert_eq!(challenge(&response), Some(r#"Bearer realm="ostiary demo""#));
}

#[tokio::test]
async fn an_invalid_token_gets_invalid_token_with_a_description() {
    let key = TestKey::ed25519("k1");
    let expired = key.token(&claims_with("exp", Some(json!(NOW - 3600))));
    let (response, body) = call(
        app(static_validator(&[&key])),
        Some(&format!("Bearer {expired}")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&response),
        Some(r#"Bearer error="invalid_token", error_description="the token has expired""#)
    );
    assert_eq!(
        body,
        json!({ "error": "invalid_token", "reason": "expired" })
    );

    let validator = static_validator(&[&key]).with_realm("api");
    let (response, body) = call(app(validator), Some("Bearer not-a-jwt")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&response),
        Some(
            r#"Bearer realm="api", error="invalid_token", error_description="the token is malformed""#
        )
    );
    assert_eq!(body["reason"], "malformed");

    let (response, body) = call(app(static_validator(&[&key])), Some("Bearer ")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({ "error": "invalid_token", "reason": "malformed" })
    );
}

#[tokio::test]
async fn a_jwks_outage_is_a_503_without_challenge() {
    let key = TestKey::ed25519("k1");
    let (validator, _clock) = remote_validator(dead_url().await);
    let (response, body) = call(
        app(validator),
        Some(&format!("Bearer {}", key.token(&claims()))),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(challenge(&response), None);
    assert_eq!(
        body,
        json!({ "error": "temporarily_unavailable", "reason": "jwks_unavailable" })
    );
}
