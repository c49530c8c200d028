//! The demo single-page app: static files (`spa/`, embedded at compile time) and its
//! configuration, served from the app's own origin.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

/// Where the demo app finds the IdP and the API.
#[derive(Debug, Clone)]
pub struct DemoAppConfig {
    /// The IdP's issuer URL (its browser endpoints are `{issuer}/browser/…`).
    pub issuer: String,
    /// This app's `client_id` (a browser client).
    pub client_id: String,
    /// This app's own origin; its redirect URI is `{app_url}/`.
    pub app_url: String,
    /// The demo API's base URL, also the resource (audience) of the access tokens.
    pub api_url: String,
}

const INDEX: &str = include_str!("../spa/index.html");
const APP_JS: &str = include_str!("../spa/app.js");
const STYLE: &str = include_str!("../spa/style.css");

fn asset(content_type: &'static str, body: &'static str, csp: &str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(csp) = HeaderValue::from_str(csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

#[derive(Clone)]
struct AppState {
    config: DemoAppConfig,
    csp: String,
}

/// The demo app's routes: `/` (also the redirect URI), `/app.js`, `/style.css`, `/config.json`.
pub fn app_router(config: DemoAppConfig) -> Router {
    // Script only from this origin, network only to this origin, the IdP and the API.
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' {} {}; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        config.issuer, config.api_url
    );
    Router::new()
        .route(
            "/",
            get(|State(s): State<AppState>| async move {
                asset("text/html; charset=utf-8", INDEX, &s.csp)
            }),
        )
        .route(
            "/app.js",
            get(|State(s): State<AppState>| async move {
                asset("text/javascript; charset=utf-8", APP_JS, &s.csp)
            }),
        )
        .route(
            "/style.css",
            get(|State(s): State<AppState>| async move {
                asset("text/css; charset=utf-8", STYLE, &s.csp)
            }),
        )
        .route(
            "/config.json",
            get(|State(s): State<AppState>| async move {
                axum::Json(json!({
                    "issuer": s.config.issuer,
                    "clientId": s.config.client_id,
                    "redirectUri": format!("{}/", s.config.app_url),
                    "apiUrl": s.config.api_url,
                }))
            }),
        )
        .with_state(AppState { config, csp })
}

/// The demo app, bound.
pub struct DemoApp;

impl DemoApp {
    /// Binds `listen` (port 0 allowed) for the routes of [`app_router`].
    pub async fn bind(listen: SocketAddr, config: DemoAppConfig) -> std::io::Result<crate::Bound> {
        crate::Bound::bind(listen, app_router(config)).await
    }
}
