//! ostiary-verify's DPoP pieces for resource servers: the tower layer, resource-server nonces
//! (RFC 9449 §9), and a replay store shared by several replicas (in memory here; Redis with
//! `OSTIARY_TEST_REDIS_URL`).

use std::sync::Arc;

use axum::routing::get;
use axum::{Extension, Router};
use ostiary_core::clock::Clock;
use ostiary_verify::dpop::{
    MemoryReplayStore, ProofId, RedisReplayStore, ReplayStore, ReplayStoreError, Seen,
};
use ostiary_verify::extract::VerifiedClaims;
use ostiary_verify::layer::VerifyLayer;
use ostiary_verify::{ConfigError, DpopRequest, ValidationError, Validator};
use reqwest::StatusCode;

use crate::dpop::DpopClient;
use crate::harness::*;

/// The public URL the test API is known by (its proofs name it, whatever address it is
/// reached at).
const PUBLIC: &str = "https://api.example/v1";

/// Serves `validator` behind a [`VerifyLayer`] on 127.0.0.1; returns its base URL.
async fn api_behind_layer(validator: Validator) -> String {
    async fn whoami(Extension(VerifiedClaims(claims)): Extension<VerifiedClaims>) -> String {
        format!("{} {}", claims.sub, claims.dpop_jkt().unwrap_or("bearer"))
    }
    let api = Router::new()
        .route("/orders", get(whoami))
        .layer(VerifyLayer::new(validator));
    serve_router(api).await
}

async fn call(base: &str, scheme: &str, token: &str, proof: Option<String>) -> reqwest::Response {
    let mut request = http()
        .get(format!("{base}/orders"))
        .header("Authorization", format!("{scheme} {token}"));
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    request.send().await.unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    let value = response.headers().get(name)?;
    Some(value.to_str().unwrap().to_owned())
}

fn challenges(response: &reqwest::Response) -> Vec<String> {
    let values = response.headers().get_all("www-authenticate").iter();
    values.map(|v| v.to_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn the_tower_layer_passes_valid_requests_with_their_claims_and_answers_the_others() {
    let app = spawn_app().await;
    let base = api_behind_layer(app.validator().with_public_url(PUBLIC)).await;
    let key = DpopClient::new();
    let tokens = app.bound_tokens(&key).await;
    let access = tokens["access_token"].as_str().unwrap();
    let url = format!("{PUBLIC}/orders");
    let now = app.clock.now();

    let ok = call(
        &base,
        "DPoP",
        access,
        Some(key.proof("GET", &url, now, Some(access))),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok.text().await.unwrap().ends_with(&key.jkt()));

    // The bound token as a bearer token: refused on the DPoP challenge (RFC 9449 §7.2).
    let as_bearer = call(&base, "Bearer", access, None).await;
    assert_eq!(as_bearer.status(), StatusCode::UNAUTHORIZED);
    let seen = challenges(&as_bearer);
    assert_eq!(seen[0], "Bearer", "{seen:?}");
    assert!(seen[1].contains(r#"error="invalid_token""#), "{seen:?}");
    // Nothing at all: both challenges, no error.
    let anonymous = http().get(format!("{base}/orders")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenges(&anonymous).len(), 2);
    // A thief's key: refused.
    let thief = DpopClient::new();
    let stolen = call(
        &base,
        "DPoP",
        access,
        Some(thief.proof("GET", &url, now, Some(access))),
    );
    assert_eq!(stolen.await.status(), StatusCode::UNAUTHORIZED);
    // A bearer token is fine where bearer tokens are accepted.
    let plain = app.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await;
    let bearer = call(
        &base,
        "Bearer",
        plain["access_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(bearer.status(), StatusCode::OK);
    assert!(bearer.text().await.unwrap().ends_with("bearer"));

    // Where only DPoP is accepted, it is not.
    let strict = api_behind_layer(app.validator().with_public_url(PUBLIC).with_dpop_required());
    let strict = strict.await;
    let refused = call(
        &strict,
        "Bearer",
        plain["access_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenges(&refused).len(), 1);
    assert!(challenges(&refused)[0].starts_with("DPoP algs="));
}

#[tokio::test]
async fn a_resource_server_that_asks_for_nonces_tells_them_and_replicas_share_them() {
    let app = spawn_app().await;
    let secret = [7u8; 32];
    let validator = || {
        app.validator()
            .with_public_url(PUBLIC)
            .with_dpop_nonces(&secret)
            .unwrap()
    };
    let (one, two) = (
        api_behind_layer(validator()).await,
        api_behind_layer(validator()).await,
    );
    let key = DpopClient::new();
    let tokens = app.bound_tokens(&key).await;
    let access = tokens["access_token"].as_str().unwrap();
    let url = format!("{PUBLIC}/orders");
    let proof = |nonce: Option<&str>| {
        key.proof_with_nonce("GET", &url, app.clock.now(), Some(access), nonce)
    };

    // No nonce: told which one to use (RFC 9449 §9).
    let first = call(&one, "DPoP", access, Some(proof(None))).await;
    assert_eq!(first.status(), StatusCode::UNAUTHORIZED);
    assert!(
        challenges(&first)[1].contains(r#"error="use_dpop_nonce""#),
        "{:?}",
        challenges(&first)
    );
    let nonce = header(&first, "dpop-nonce").expect("a DPoP-Nonce header");
    // With it: accepted here and at the other replica, which answers with the current one.
    let ok = call(&one, "DPoP", access, Some(proof(Some(&nonce)))).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(header(&ok, "dpop-nonce").as_deref(), Some(nonce.as_str()));
    let elsewhere = call(&two, "DPoP", access, Some(proof(Some(&nonce)))).await;
    assert_eq!(elsewhere.status(), StatusCode::OK);

    // A replica with another secret does not take it; the IdP's nonces are not the API's.
    let foreign = app
        .validator()
        .with_public_url(PUBLIC)
        .with_dpop_nonces(&[8u8; 32])
        .unwrap();
    let request = DpopRequest {
        method: "GET",
        url: &url,
    };
    let idp_nonce = app.idp.dpop_nonce().unwrap();
    for nonce in [nonce.as_str(), idp_nonce.as_str()] {
        let error = foreign
            .validate_dpop(access, &proof(Some(nonce)), &request)
            .await
            .unwrap_err();
        assert_eq!(error, ValidationError::UseDpopNonce);
    }
    // Stale after two windows.
    app.clock
        .advance(3 * ostiary_core::dpop::nonce::NONCE_ROTATION);
    let stale = validator()
        .validate_dpop(access, &proof(Some(&nonce)), &request)
        .await
        .unwrap_err();
    assert_eq!(stale, ValidationError::UseDpopNonce);

    assert!(matches!(
        app.validator().with_dpop_nonces(&[1u8; 16]),
        Err(ConfigError::ShortNonceSecret)
    ));
}

/// Two replicas of a resource server with one replay store: a proof is accepted once in all.
async fn a_proof_is_accepted_once_by_replicas_sharing(store: Arc<dyn ReplayStore>) {
    let app = spawn_app().await;
    let replica = || app.validator().with_replay_store(store.clone());
    let (one, two) = (replica(), replica());
    let key = DpopClient::new();
    let tokens = app.bound_tokens(&key).await;
    let access = tokens["access_token"].as_str().unwrap();
    let url = "https://api.example/orders";
    let request = DpopRequest { method: "GET", url };
    let proof = key.proof("GET", url, app.clock.now(), Some(access));

    assert!(one.validate_dpop(access, &proof, &request).await.is_ok());
    assert_eq!(
        two.validate_dpop(access, &proof, &request)
            .await
            .unwrap_err(),
        ValidationError::InvalidDpopProof(ostiary_verify::dpop::ProofError::Replayed)
    );
    let next = key.proof("GET", url, app.clock.now(), Some(access));
    assert!(two.validate_dpop(access, &next, &request).await.is_ok());
}

#[tokio::test]
async fn replicas_sharing_a_memory_store_accept_a_proof_once() {
    a_proof_is_accepted_once_by_replicas_sharing(Arc::new(MemoryReplayStore::default())).await;
}

#[tokio::test]
#[ignore = "needs Redis: set OSTIARY_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/)"]
async fn replicas_sharing_redis_accept_a_proof_once() {
    let url = std::env::var("OSTIARY_TEST_REDIS_URL")
        .expect("OSTIARY_TEST_REDIS_URL names the Redis server for this test");
    // A prefix of this run's own: nothing another test wrote can collide.
    let prefix = format!("ostiary-test:{}:", ostiary_core::secret::random_id());
    let connect = || RedisReplayStore::connect(&url, prefix.clone());
    let first = connect().await.expect("Redis reachable");
    let second = connect().await.expect("Redis reachable");
    // Each replica has its own connection; the store is the server.
    let proof = ProofId::new("jkt", "jti");
    assert_eq!(first.record(&proof, 1_060, 1_000).await, Ok(Seen::New));
    assert_eq!(
        second.record(&proof, 1_060, 1_000).await,
        Ok(Seen::Replayed)
    );
    // A window far too long is capped, not an error; one already over is kept a second.
    let far = ProofId::new("jkt", "far");
    assert_eq!(first.record(&far, i64::MAX, 1_000).await, Ok(Seen::New));
    let over = ProofId::new("jkt", "over");
    assert_eq!(first.record(&over, 900, 1_000).await, Ok(Seen::New));
    a_proof_is_accepted_once_by_replicas_sharing(Arc::new(first)).await;
}

#[tokio::test]
async fn an_unreachable_replay_store_refuses_proofs_with_503_never_accepts_them() {
    // Redis on a closed port of this machine: not even set up.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let closed_url = format!("redis://127.0.0.1:{port}/");
    let unreachable = RedisReplayStore::connect(&closed_url, "x:").await;
    assert!(matches!(unreachable, Err(ConfigError::ReplayStore(_))));

    /// A store that has become unreachable after start-up.
    struct Down;
    #[async_trait::async_trait]
    impl ReplayStore for Down {
        async fn record(&self, _: &ProofId, _: i64, _: i64) -> Result<Seen, ReplayStoreError> {
            Err(ReplayStoreError::Unavailable("connection refused".into()))
        }
    }
    let app = spawn_app().await;
    let validator = app.validator().with_public_url(PUBLIC);
    let base = api_behind_layer(validator.with_replay_store(Arc::new(Down))).await;
    let key = DpopClient::new();
    let tokens = app.bound_tokens(&key).await;
    let access = tokens["access_token"].as_str().unwrap();
    let proof = key.proof(
        "GET",
        &format!("{PUBLIC}/orders"),
        app.clock.now(),
        Some(access),
    );
    let refused = call(&base, "DPoP", access, Some(proof)).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["reason"], "dpop_replay_store_unavailable");
}

/// Inside `Router::nest` the request's URI has lost its prefix; proofs name the whole path the
/// client addressed, and a path with dot segments is refused (found by a new user and an
/// attack run).
#[tokio::test]
async fn proofs_name_the_whole_path_under_a_nested_router_and_no_dot_segments() {
    use ostiary_verify::extract::VerifiedClaims as Claims;
    async fn by_extractor(Claims(claims): Claims) -> String {
        claims.sub
    }
    async fn by_layer(Extension(Claims(claims)): Extension<Claims>) -> String {
        claims.sub
    }
    let app = spawn_app().await;
    let validator = app.validator().with_public_url(PUBLIC);
    let api = Router::new()
        .nest(
            "/extractor",
            Router::new()
                .route("/orders", get(by_extractor))
                .route("/files/{*rest}", get(by_extractor))
                .with_state(validator.clone()),
        )
        .nest(
            "/layer",
            Router::new()
                .route("/orders", get(by_layer))
                .layer(VerifyLayer::new(validator)),
        );
    let base = serve_router(api).await;
    let key = DpopClient::new();
    let tokens = app.bound_tokens(&key).await;
    let access = tokens["access_token"].as_str().unwrap();
    let at = |path: &str, named: &str| {
        let proof = key.proof(
            "GET",
            &format!("{PUBLIC}{named}"),
            app.clock.now(),
            Some(access),
        );
        http()
            .get(format!("{base}{path}"))
            .header("Authorization", format!("DPoP {access}"))
            .header("DPoP", proof)
            .send()
    };
    for prefix in ["/extractor", "/layer"] {
        let path = format!("{prefix}/orders");
        let whole = at(&path, &path).await.unwrap();
        assert_eq!(whole.status(), StatusCode::OK, "{path}");
        let stripped = at(&path, "/orders").await.unwrap();
        assert_eq!(stripped.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    // Routed to /extractor/files/{*rest}, which a URL comparison would read as
    // /extractor/orders. Sent as raw HTTP/1.1: client libraries resolve dot segments first.
    for dotted in [
        "/extractor/files/../orders",
        "/extractor/files/%2E%2e/orders",
    ] {
        let proof = key.proof(
            "GET",
            &format!("{PUBLIC}/extractor/orders"),
            app.clock.now(),
            Some(access),
        );
        let request = format!(
            "GET {dotted} HTTP/1.1\r\nHost: api.example\r\nAuthorization: DPoP {access}\r\nDPoP: {proof}\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(raw_status(&base, &request).await, "401", "{dotted}");
    }
}

/// Sends `request` as it is to `base` (`http://host:port`); the answer's status code.
async fn raw_status(base: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer.split(' ').nth(1).unwrap_or_default().to_owned()
}
