//! Ostiary's HTTP adapter: the OAuth 2.0 / OpenID Connect endpoints on axum.
//!
//! Handlers parse the request at the edge ([`params`]), call one use case of
//! [`ostiary_core::Idp`], and turn its result into a response; domain errors become HTTP
//! responses in one place ([`error`]).
//!
//! # Layout
//! - [`Application`]: binds the listener (port 0 allowed), builds the [`router`], serves
//!   until a shutdown signal.
//! - [`serve`]: the accept loop (HTTP/1.1 on hyper) with its header, body and keep-alive
//!   timeouts ([`HttpTimeouts`]) and graceful shutdown.
//! - [`endpoints`]: one module per endpoint (discovery, JWKS, authorize, login, token,
//!   revocation, userinfo, end-session, health, admin, metrics).
//! - [`params`]: strict form and query parsing (no repeated parameters, size limits).
//! - [`cookies`]: the browser-session and CSRF cookies and their attributes.
//! - [`error`]: the one mapping from domain errors to RFC 6749 / RFC 6750 / HTML responses.
//! - [`html`]: page layout and escaping.
//! - [`backchannel`]: sending back-channel logout tokens in the background.
//! - [`metrics`]: the Prometheus registry of one application (HTTP and security counters)
//!   and the middleware that times requests; served by [`endpoints::metrics`].
//! - [`proxy`]: trusted reverse proxies and the client address (`X-Forwarded-For`).
//! - [`request_id`]: the `x-request-id` of every request, in its response and its span.
//! - [`retention`]: the retention job (expired sessions ended, old records deleted) in the
//!   background.

pub mod backchannel;
pub mod completion;
pub mod cookies;
pub mod demand;
pub mod endpoints;
pub mod error;
pub mod html;
pub mod metrics;
pub mod params;
pub mod proxy;
pub mod request_id;
pub mod retention;
pub mod serve;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use http::{HeaderName, HeaderValue, header};
use ostiary_core::clock::Clock;
use ostiary_core::secret::{Credential, CredentialHash};
use ostiary_core::{Idp, IdpConfig, IdpError, Store};
use tower_http::cors::{Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::cookies::CookiePolicy;
use crate::metrics::Metrics;
use crate::proxy::TrustedProxies;
pub use crate::serve::HttpTimeouts;

/// Largest request body accepted anywhere, in bytes (64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What handlers share: one allocation, so that the extractors' clones of it cost one
/// reference count each.
#[derive(Debug, Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// The contents of [`AppState`].
#[derive(Debug)]
pub struct SharedState {
    /// The use cases.
    pub idp: Idp,
    /// How cookies are written.
    pub cookies: CookiePolicy,
    /// The issuer's origin (`scheme://host[:port]`), for `Origin` checks on forms.
    pub origin: Arc<str>,
    /// SHA-256 of the admin API's token; `None`: the admin API is off.
    pub admin_token: Option<CredentialHash>,
    /// This application's metrics (always collected; served only with `metrics_token`).
    pub metrics: Arc<Metrics>,
    /// SHA-256 of the metrics scraper's token; `None`: `/metrics` is off.
    pub metrics_token: Option<CredentialHash>,
    /// Whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<TrustedProxies>,
    /// Becomes `true` when the server starts shutting down: long-lived responses (the
    /// revocation stream) end, so that the graceful shutdown does not wait for them.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// Failed sign-ins being held back by the throttle (see `endpoints::login`), bounded by
    /// [`endpoints::login::MAX_HELD_ANSWERS`].
    pub held_answers: Arc<tokio::sync::Semaphore>,
    /// The revocation streams of this instance: the feed's latest `seq`, re-read once for all
    /// of them, and the permits that bound how many may be open (see
    /// [`endpoints::revocations`]).
    pub feed: endpoints::revocations::FeedHead,
}

impl SharedState {
    /// An absolute URL on the issuer for `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.idp.config().issuer.trim_end_matches('/'))
    }
}

/// Settings of the HTTP server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Socket address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The IdP settings. If `issuer` is empty it becomes `http://{bound address}`.
    pub idp: IdpConfig,
    /// Development only: cookies without `Secure` and without the `__Host-` prefix, for
    /// non-browser clients on plain HTTP. Default (and in production) `false`.
    pub dangerous_insecure_cookies: bool,
    /// The admin API's bearer token (see [`endpoints::admin`]); `None` turns the API off.
    pub admin_token: Option<Credential>,
    /// The bearer token Prometheus scrapes `/metrics` with (see [`endpoints::metrics`]);
    /// `None` (the default) turns `/metrics` off.
    pub metrics_token: Option<Credential>,
    /// Reverse proxies whose `X-Forwarded-For` gives the client's address (see [`proxy`]).
    /// Default: none.
    pub trusted_proxies: TrustedProxies,
    /// Most `/revocations/stream` connections open at once; beyond, the stream answers 503
    /// and readers poll `/revocations`. Default
    /// [`endpoints::revocations::MAX_STREAMS`] (1000).
    pub max_revocation_streams: usize,
    /// How long a connection may take to send a request head or body, and may stay idle
    /// between keep-alive requests (see [`serve`]). Default [`HttpTimeouts::default`]: 10 s,
    /// 10 s, 75 s.
    pub http: HttpTimeouts,
}

impl Default for ServerConfig {
    /// `127.0.0.1:8080`, the default [`IdpConfig`] with the issuer derived from the bound
    /// address, secure cookies, no admin API, no metrics, no trusted proxy, the default
    /// [`HttpTimeouts`].
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            idp: IdpConfig {
                issuer: String::new(),
                ..IdpConfig::default()
            },
            dangerous_insecure_cookies: false,
            admin_token: None,
            metrics_token: None,
            trusted_proxies: TrustedProxies::none(),
            max_revocation_streams: endpoints::revocations::MAX_STREAMS,
            http: HttpTimeouts::default(),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// The issuer is not a valid URL.
    #[error("issuer {0:?} must be an http(s) URL without query or fragment")]
    Issuer(String),
    /// The IdP could not start (keys, storage).
    #[error(transparent)]
    Idp(#[from] IdpError),
    /// A timeout of [`HttpTimeouts`] (its name) is zero or longer than
    /// [`serve::MAX_TIMEOUT`].
    #[error("{0} must be more than zero and at most a day")]
    Timeout(&'static str),
}

/// CORS preflights are answered by the CORS layer; this handler only gives `OPTIONS` a route,
/// since a layer runs only for methods a route has.
async fn preflight() -> http::StatusCode {
    http::StatusCode::NO_CONTENT
}

/// The routes. Exposed for `oneshot` tests; [`Application`] serves it.
///
/// Only the public documents (the two metadata documents and the JWKS) may be cached, for
/// their own `max-age`. Every other response, success or error, is `Cache-Control: no-store`,
/// set by one layer over those routes and the fallback rather than by each handler: they carry
/// tokens, sessions, personal data, audit records or a page's CSRF token, or (health, the
/// revocation feed) are true only now. A new route is private unless it is added to the
/// cacheable ones; `tests/it/caching.rs` pins the split.
pub fn router(state: AppState) -> Router {
    use endpoints::*;
    // Metadata, keys, userinfo and the revocation feed hold nothing a cookie unlocks (userinfo
    // needs an access token), so any origin may read them from script, without credentials.
    // Script may send a DPoP proof (RFC 9449) and read the DPoP challenge and nonce.
    let any_origin = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([http::Method::GET, http::Method::POST])
        .allow_headers([header::AUTHORIZATION, HeaderName::from_static("dpop")])
        .expose_headers([header::WWW_AUTHENTICATE, error::DPOP_NONCE])
        .max_age(Duration::from_secs(600));
    let cacheable = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration).options(preflight),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::oauth_authorization_server).options(preflight),
        )
        .route("/jwks.json", get(discovery::jwks).options(preflight))
        .layer(any_origin.clone());
    let cross_origin = Router::new()
        .route(
            "/userinfo",
            get(userinfo::userinfo_get)
                .post(userinfo::userinfo_post)
                .options(preflight),
        )
        .route("/revocations", get(revocations::poll).options(preflight))
        .route(
            "/revocations/stream",
            get(revocations::stream).options(preflight),
        )
        .layer(any_origin);
    let private = Router::new()
        .merge(cross_origin)
        .route(
            "/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route("/login", get(login::show).post(login::submit))
        .route("/token", post(token::token))
        .route("/revoke", post(token::revoke))
        .route("/introspect", post(token::introspect))
        .route(
            "/logout",
            get(logout::end_session_get).post(logout::end_session_post),
        )
        .route("/logout/confirm", post(logout::confirm))
        .route(
            "/browser/token",
            post(browser::token).options(browser::preflight),
        )
        .route(
            "/browser/logout",
            post(browser::logout).options(browser::preflight),
        )
        .route("/account", get(account::page))
        .route("/account/sessions", get(account::list))
        .route("/account/sessions/end", post(account::end))
        .route("/admin/sessions", get(admin::sessions))
        .route("/admin/sessions/revoke", post(admin::revoke))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/backchannel", get(admin::backchannel))
        .route("/admin/users/unlock", post(admin::unlock))
        .route("/admin/keys/rotate", post(admin::rotate_keys))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(endpoints::metrics::metrics))
        .route("/", get(home::home))
        .fallback(home::not_found)
        // Overriding: no handler below can make its response cacheable by mistake.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    Router::new()
        .merge(cacheable)
        .merge(private)
        // Layers run from the last added (outermost) to the first. `Router::layer` wraps each
        // route after matching, so the metrics see the matched route.
        // Innermost: the request is counted as in flight (password hashing gives way to
        // it) inside the task that runs the handler to its end even if the client goes away.
        .layer(axum::middleware::from_fn_with_state(Arc::clone(state.idp.hashing_demand()), demand::count_in_flight))
        .layer(axum::middleware::from_fn(completion::run_to_completion))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), crate::metrics::track_http))
        .layer(axum::middleware::from_fn_with_state(state.trusted_proxies.clone(), proxy::resolve_client))
        .layer(PropagateRequestIdLayer::new(request_id::HEADER))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &http::Request<_>| {
            // Only method, path and request id: query strings carry codes and states,
            // headers carry credentials and cookies.
            let id = request.headers().get(request_id::HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(request_id::HEADER, MakeRequestUuid))
        .layer(tower::util::MapRequestLayer::new(request_id::drop_unacceptable::<axum::body::Body>))
        .with_state(state)
}

fn issuer_origin(issuer: &str) -> Result<String, StartError> {
    let url = url::Url::parse(issuer).map_err(|_| StartError::Issuer(issuer.to_owned()))?;
    let ok = matches!(url.scheme(), "http" | "https")
        && url.query().is_none()
        && url.fragment().is_none()
        && url.host().is_some();
    if !ok {
        return Err(StartError::Issuer(issuer.to_owned()));
    }
    Ok(url.origin().ascii_serialization())
}

/// A bound, ready-to-run identity provider.
pub struct Application {
    listener: tokio::net::TcpListener,
    router: Router,
    idp: Idp,
    timeouts: HttpTimeouts,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Application {
    /// Binds the listener and starts the IdP on `store` (loading or generating signing keys).
    pub async fn build(
        mut config: ServerConfig,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        config.http.validate()?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| StartError::Bind(config.listen, e))?;
        let local = listener
            .local_addr()
            .map_err(|e| StartError::Bind(config.listen, e))?;
        if config.idp.issuer.is_empty() {
            config.idp.issuer = format!("http://{local}");
        }
        let origin = issuer_origin(&config.idp.issuer)?;
        let cookies = if config.dangerous_insecure_cookies {
            tracing::warn!(
                "DANGER: dangerous_insecure_cookies is on: cookies are not Secure and not __Host- \
                 prefixed. Never use this outside local development."
            );
            CookiePolicy::dangerous_insecure()
        } else {
            CookiePolicy::secure()
        };
        let metrics = Arc::new(Metrics::new());
        let idp = Idp::with_observer(store, clock, config.idp, metrics.clone()).await?;
        let (stop, stopping) = tokio::sync::watch::channel(false);
        if !config.trusted_proxies.is_empty() {
            tracing::info!("X-Forwarded-For is believed from the configured trusted_proxies only");
        }
        let state = AppState(Arc::new(SharedState {
            idp: idp.clone(),
            cookies,
            origin: origin.into(),
            admin_token: config.admin_token.as_ref().map(Credential::hash),
            metrics,
            metrics_token: config.metrics_token.as_ref().map(Credential::hash),
            trusted_proxies: Arc::new(config.trusted_proxies),
            stopping,
            held_answers: Arc::new(tokio::sync::Semaphore::new(
                endpoints::login::MAX_HELD_ANSWERS,
            )),
            feed: endpoints::revocations::FeedHead::new(config.max_revocation_streams),
        }));
        // One reader of the feed's head for every stream of this instance, until shutdown.
        tokio::spawn(endpoints::revocations::follow_head(
            idp.clone(),
            state.feed.clone(),
            stop.subscribe(),
        ));
        Ok(Self {
            listener,
            router: router(state),
            idp,
            timeouts: config.http,
            stop,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// The IdP (for printing the issuer, or for tests).
    pub fn idp(&self) -> &Idp {
        &self.idp
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests (at most 10 s).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // Back-channel logout deliveries run beside the server and stop with it.
        let stop = self.stop;
        match backchannel::HttpLogoutSender::new() {
            Ok(sender) => {
                tokio::spawn(backchannel::run_worker(
                    self.idp.clone(),
                    sender,
                    stop.subscribe(),
                ));
            }
            Err(error) => tracing::error!(%error, "back-channel logout is off: no HTTP client"),
        }
        // Every instance reloads the signing keys (and rotates them when due) on a schedule.
        tokio::spawn(maintain_keys(self.idp.clone(), stop.subscribe()));
        // And runs the retention job, which one instance at a time does.
        tokio::spawn(retention::run_worker(self.idp.clone(), stop.subscribe()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = serve::serve(self.listener, self.router, self.timeouts, async move {
            shutdown.await;
            stop.send_replace(true);
            let _ = tx.send(());
        });
        tokio::select! {
            result = server => result,
            () = async {
                let _ = rx.await;
                tokio::time::sleep(Duration::from_secs(10)).await;
            } => {
                tracing::warn!("in-flight requests did not finish within 10 s of shutdown");
                Ok(())
            }
        }
    }

    /// Serves until the process is stopped.
    pub async fn run(self) -> std::io::Result<()> {
        self.run_until(std::future::pending()).await
    }
}

/// Runs [`Idp::maintain_keys`] every [`ostiary_core::keys::KEY_RELOAD_INTERVAL`] seconds until
/// the server stops.
async fn maintain_keys(idp: Idp, mut stop: tokio::sync::watch::Receiver<bool>) {
    let interval = Duration::from_secs(ostiary_core::keys::KEY_RELOAD_INTERVAL.unsigned_abs());
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        if let Err(error) = idp.maintain_keys().await {
            tracing::error!(%error, "could not reload or rotate the signing keys; will retry");
        }
    }
}
