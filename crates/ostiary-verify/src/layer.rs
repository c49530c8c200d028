//! A tower layer (feature `axum`): [`VerifyLayer`] checks every request's access token before
//! the service it wraps sees the request.
//!
//! It makes the same checks and gives the same answers on failure as the
//! [`VerifiedClaims`] extractor (see [`crate::extract`]): `Bearer`, or `DPoP` with its proof
//! against the validator's public URL, and `WWW-Authenticate` challenges per RFC 6750 §3 and
//! RFC 9449 §7.1. A request that passes reaches the inner service with its claims in the
//! request extensions as [`VerifiedClaims`] (in axum: `Extension<VerifiedClaims>`; the DPoP
//! key's thumbprint is [`AccessTokenClaims::dpop_jkt`](crate::AccessTokenClaims::dpop_jkt)).
//! With resource-server nonces ([`Validator::with_dpop_nonces`]), every response to a DPoP
//! request carries the current one in `DPoP-Nonce` (RFC 9449 §9), so clients that follow it
//! are not refused when it rotates.
//!
//! ```
//! use axum::{Extension, Router, routing::get};
//! use ostiary_verify::{Algorithm, JwksSource, Validator};
//! use ostiary_verify::extract::VerifiedClaims;
//! use ostiary_verify::layer::VerifyLayer;
//!
//! async fn me(Extension(VerifiedClaims(claims)): Extension<VerifiedClaims>) -> String {
//!     format!("{} {}", claims.sub, claims.dpop_jkt().unwrap_or("bearer"))
//! }
//!
//! let validator = Validator::new(
//!     "https://id.example",
//!     "https://api.example",
//!     &[Algorithm::ES256],
//!     JwksSource::remote("https://id.example/jwks.json"),
//! )?
//! .with_public_url("https://api.example")
//! .with_dpop_required();
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .layer(VerifyLayer::new(validator));
//! # drop(app);
//! # Ok::<(), ostiary_verify::ConfigError>(())
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Request};
use tower_layer::Layer;
use tower_service::Service;

use crate::Validator;
use crate::extract::{DPOP_NONCE, VerifiedClaims, addressed_uri, authenticate};

/// Wraps a service with [`VerifyService`]: only requests with a valid access token reach it.
#[derive(Debug, Clone)]
pub struct VerifyLayer {
    validator: Validator,
}

impl VerifyLayer {
    /// A layer checking tokens with `validator` (its public URL, DPoP policy and nonces
    /// included).
    pub fn new(validator: Validator) -> Self {
        Self { validator }
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyService {
            inner,
            validator: self.validator.clone(),
        }
    }
}

/// The service [`VerifyLayer`] makes: answers a request without a valid token itself, passes
/// the others on with [`VerifiedClaims`] in their extensions.
#[derive(Debug, Clone)]
pub struct VerifyService<S> {
    inner: S,
    validator: Validator,
}

impl<S, B> Service<Request<B>> for VerifyService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone that was driven to readiness serves this request (tower's convention).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let validator = self.validator.clone();
        Box::pin(async move {
            let uri = addressed_uri(request.uri(), request.extensions());
            let verified = authenticate(&validator, request.method(), uri, request.headers()).await;
            let claims = match verified {
                Ok(claims) => claims,
                Err(rejection) => return Ok(rejection.into_response()),
            };
            // Only a token bound to a key passes, and only under the DPoP scheme.
            let dpop = claims.dpop_jkt().is_some();
            request.extensions_mut().insert(VerifiedClaims(claims));
            let mut response = inner.call(request).await?;
            if dpop
                && let Some(nonce) = validator.dpop_nonce()
                && let Ok(value) = HeaderValue::from_str(&nonce)
            {
                response.headers_mut().insert(DPOP_NONCE, value);
            }
            Ok(response)
        })
    }
}
