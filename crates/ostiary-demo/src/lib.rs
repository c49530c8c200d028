//! Demo pieces for Ostiary: a resource server (the "demo API") protected by `ostiary-verify`,
//! and a single-page app that signs in with the IdP and calls the API.
//!
//! The demo API knows nothing of the identity provider but its issuer URL, its own audience
//! and where the JWKS is; it validates every access token locally.
//!
//! # Layout
//! - [`api_router`]: the demo API's routes.
//! - [`DemoApi`]: binds and serves the demo API.
//! - [`spa`]: the demo single-page app ([`DemoApp`]), a browser client of the IdP.

pub mod spa;

pub use spa::{DemoApp, DemoAppConfig};

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::routing::get;
use axum::{Json, Router};
use ostiary_verify::Validator;
use ostiary_verify::extract::{DPOP_NONCE, VerifiedClaims};
use serde_json::{Value, json};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The demo API's routes:
/// - `GET /api/hello`: needs a valid access token for this API (DPoP-bound, with its proof,
///   when the validator requires it: `ostiary demo` does); answers who called, through which
///   client, with which scope and key, and when the token expires.
/// - `GET /`: a one-line description.
///
/// Script on `cors_origins` may call it with `Authorization` and `DPoP` headers (no cookies:
/// the API has none) and read its `WWW-Authenticate` challenges and `DPoP-Nonce`.
pub fn api_router(validator: Validator, cors_origins: &[String]) -> Router {
    let origins: Vec<HeaderValue> = cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET])
        .allow_headers([header::AUTHORIZATION, HeaderName::from_static("dpop")])
        .expose_headers([header::WWW_AUTHENTICATE, DPOP_NONCE]);
    Router::new()
        .route("/api/hello", get(hello))
        .route(
            "/",
            get(|| async {
                "Ostiary demo API: GET /api/hello with Authorization: DPoP <access token> and its DPoP proof\n"
            }),
        )
        .with_state(validator)
        .layer(cors)
}

async fn hello(
    State(_validator): State<Validator>,
    VerifiedClaims(claims): VerifiedClaims,
) -> Json<Value> {
    Json(json!({
        "message": format!("Hello, {}! Your access token was verified locally with the IdP's published key.", claims.sub),
        "sub": claims.sub,
        "client_id": claims.client_id,
        "scope": claims.scope,
        "sid": claims.sid,
        "dpop_jkt": claims.dpop_jkt(),
        "expires_at": claims.exp,
    }))
}

/// A router bound to a socket, ready to serve: the demo API or the demo app.
pub struct Bound {
    listener: tokio::net::TcpListener,
    router: Router,
}

impl Bound {
    /// Binds `listen` (port 0 allowed) for `router`.
    pub async fn bind(listen: SocketAddr, router: Router) -> std::io::Result<Self> {
        Ok(Self {
            listener: tokio::net::TcpListener::bind(listen).await?,
            router,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// The demo API, bound.
pub struct DemoApi;

impl DemoApi {
    /// Binds `listen` (port 0 allowed) for the routes of [`api_router`].
    pub async fn bind(
        listen: SocketAddr,
        validator: Validator,
        cors_origins: &[String],
    ) -> std::io::Result<Bound> {
        Bound::bind(listen, api_router(validator, cors_origins)).await
    }
}
