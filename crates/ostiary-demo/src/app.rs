//! The demo web app: an OAuth client that signs users in with the authorization code flow and
//! PKCE, keeps their tokens on its server side, and calls the demo API with the access token.
//!
//! It is deliberately small and readable; the browser only ever holds this app's own session
//! cookie. (The single-page-app variant, where the refresh token lives only on the IdP's
//! origin, is a later part of the demo.)

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest;
use aws_lc_rs::rand::SecureRandom as _;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::Value;

/// Where the demo app finds everything.
#[derive(Debug, Clone)]
pub struct DemoAppConfig {
    /// The IdP's issuer URL (endpoints are `{issuer}/authorize`, `/token`, `/logout`).
    pub issuer: String,
    /// This app's `client_id` (a public client).
    pub client_id: String,
    /// This app's own base URL; `{app_url}/callback` is its redirect URI.
    pub app_url: String,
    /// The demo API's base URL, also the resource (audience) of the access tokens.
    pub api_url: String,
}

#[derive(Debug, Clone)]
struct Tokens {
    access_token: String,
    refresh_token: Option<String>,
    id_token: Option<String>,
    username: String,
    expires_at: i64,
}

/// At most this many pending logins and signed-in browsers are remembered (a demo, not a
/// production session store).
const MAX_ENTRIES: usize = 1000;

#[derive(Clone)]
struct AppState {
    config: Arc<DemoAppConfig>,
    http: reqwest::Client,
    pending: Arc<Mutex<HashMap<String, String>>>,
    sessions: Arc<Mutex<HashMap<String, Tokens>>>,
}

fn random() -> String {
    let mut bytes = [0u8; 32];
    let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn escape(text: &str) -> String {
    html_escape::encode_double_quoted_attribute(text).into_owned()
}

fn page(body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Demo app · Ostiary</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem}}\
         pre{{background:#f4f4f4;padding:.6rem;overflow-x:auto}}form{{display:inline}}button{{margin:.3rem .3rem 0 0}}</style></head>\
         <body><h1>Demo app</h1>{body}</body></html>"
    );
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Html(html),
    )
        .into_response()
}

const EXPLAIN: &str = "<p>This app is an OAuth client of the Ostiary identity provider. The IdP keeps your \
    session; this app holds a short-lived <em>access token</em> (a signed JWT) for the demo API and a \
    <em>refresh token</em> to get new ones, both on its server side. The demo API checks each access \
    token locally against the IdP's published keys, without calling the IdP.</p>";

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == "demo_app_session")
        .map(|(_, value)| value.to_owned())
}

fn signed_in(state: &AppState, headers: &HeaderMap) -> Option<(String, Tokens)> {
    let key = session_cookie(headers)?;
    let sessions = state.sessions.lock().ok()?;
    sessions.get(&key).cloned().map(|t| (key, t))
}

fn claims_of(jwt: &str) -> Value {
    // For display only: the app received this token directly from the token endpoint.
    jwt.split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((_, tokens)) = signed_in(&state, &headers) else {
        return page(&format!(
            "{EXPLAIN}<p>You are not signed in.</p><p><a href=\"/login\">Sign in with Ostiary</a></p>"
        ));
    };
    let remaining = tokens.expires_at - now();
    page(&format!(
        "<p>Signed in as <strong>{}</strong>. The access token expires in {} s{}.</p>\
         <form method=\"post\" action=\"/call\"><button>Call the demo API</button></form>\
         <form method=\"post\" action=\"/refresh\"><button>Refresh the access token</button></form>\
         <form method=\"post\" action=\"/logout\"><button>Sign out</button></form>\
         <h2>Access token claims</h2><pre>{}</pre>{EXPLAIN}",
        escape(&tokens.username),
        remaining.max(0),
        if tokens.refresh_token.is_some() {
            "; a refresh token is held"
        } else {
            ""
        },
        escape(&serde_json::to_string_pretty(&claims_of(&tokens.access_token)).unwrap_or_default()),
    ))
}

async fn login(State(state): State<AppState>) -> Response {
    let verifier = random();
    let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    let csrf_state = random();
    if let Ok(mut pending) = state.pending.lock() {
        if pending.len() >= MAX_ENTRIES {
            pending.clear();
        }
        pending.insert(csrf_state.clone(), verifier);
    }
    let config = &state.config;
    let query = form_query(&[
        ("response_type", "code"),
        ("client_id", &config.client_id),
        ("redirect_uri", &format!("{}/callback", config.app_url)),
        ("scope", "openid profile offline_access"),
        ("state", &csrf_state),
        ("nonce", &random()),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("resource", &config.api_url),
    ]);
    Redirect::to(&format!("{}/authorize?{query}", config.issuer)).into_response()
}

fn form_query(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(&urlencode(value));
    }
    out
}

fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn token_request(state: &AppState, form: &[(&str, &str)]) -> Result<Value, String> {
    let response = state
        .http
        .post(format!("{}/token", state.config.issuer))
        .form(form)
        .send()
        .await
        .map_err(|e| format!("token endpoint unreachable: {e}"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| format!("token endpoint answered non-JSON: {e}"))?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("token endpoint answered {status}: {body}"))
    }
}

fn store_tokens(
    state: &AppState,
    key: String,
    body: &Value,
    previous: Option<&Tokens>,
) -> Result<(), String> {
    let access_token = body["access_token"]
        .as_str()
        .ok_or("no access_token in the response")?
        .to_owned();
    let id_token = body["id_token"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| previous.and_then(|p| p.id_token.clone()));
    let username = id_token
        .as_deref()
        .map(claims_of)
        .and_then(|c| c["preferred_username"].as_str().map(str::to_owned))
        .unwrap_or_else(|| {
            claims_of(&access_token)["sub"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        });
    let tokens = Tokens {
        expires_at: now() + body["expires_in"].as_i64().unwrap_or(0),
        access_token,
        refresh_token: body["refresh_token"].as_str().map(str::to_owned),
        id_token,
        username,
    };
    let mut sessions = state.sessions.lock().map_err(|_| "state poisoned")?;
    if sessions.len() >= MAX_ENTRIES && !sessions.contains_key(&key) {
        sessions.clear();
    }
    sessions.insert(key, tokens);
    Ok(())
}

async fn callback(State(state): State<AppState>, Query(callback): Query<Callback>) -> Response {
    if let Some(error) = callback.error {
        return page(&format!(
            "<p>Sign-in failed: <code>{}</code> {}</p><p><a href=\"/\">Back</a></p>",
            escape(&error),
            escape(callback.error_description.as_deref().unwrap_or(""))
        ));
    }
    let verifier = callback
        .state
        .as_ref()
        .and_then(|s| state.pending.lock().ok().and_then(|mut p| p.remove(s)));
    let (Some(code), Some(verifier)) = (callback.code, verifier) else {
        return page(
            "<p>This sign-in response is unknown or was already used.</p><p><a href=\"/\">Back</a></p>",
        );
    };
    let redirect_uri = format!("{}/callback", state.config.app_url);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("client_id", state.config.client_id.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let key = random();
    match token_request(&state, &form)
        .await
        .and_then(|body| store_tokens(&state, key.clone(), &body, None))
    {
        Ok(()) => {
            let mut response = Redirect::to("/").into_response();
            let cookie = format!("demo_app_session={key}; HttpOnly; SameSite=Lax; Path=/");
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(e) => page(&format!(
            "<p>Code exchange failed: {}</p><p><a href=\"/\">Back</a></p>",
            escape(&e)
        )),
    }
}

async fn call_api(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((_, tokens)) = signed_in(&state, &headers) else {
        return Redirect::to("/").into_response();
    };
    let result = state
        .http
        .get(format!("{}/api/hello", state.config.api_url))
        .bearer_auth(&tokens.access_token)
        .send()
        .await;
    let text = match result {
        Ok(response) => {
            let status = response.status();
            let challenge = response
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(|v| format!("\nWWW-Authenticate: {v}"))
                .unwrap_or_default();
            let body = response.text().await.unwrap_or_default();
            format!("HTTP {status}{challenge}\n\n{body}")
        }
        Err(e) => format!("the demo API is unreachable: {e}"),
    };
    page(&format!(
        "<h2>GET {}/api/hello</h2><pre>{}</pre><p><a href=\"/\">Back</a></p>",
        escape(&state.config.api_url),
        escape(&text)
    ))
}

async fn refresh(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((key, tokens)) = signed_in(&state, &headers) else {
        return Redirect::to("/").into_response();
    };
    let Some(refresh_token) = tokens.refresh_token.clone() else {
        return page("<p>No refresh token is held.</p><p><a href=\"/\">Back</a></p>");
    };
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
        ("client_id", state.config.client_id.as_str()),
    ];
    match token_request(&state, &form)
        .await
        .and_then(|body| store_tokens(&state, key, &body, Some(&tokens)))
    {
        Ok(()) => Redirect::to("/").into_response(),
        Err(e) => page(&format!(
            "<p>Refresh failed (the session may have ended): {}</p><p><a href=\"/login\">Sign in again</a></p>",
            escape(&e)
        )),
    }
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let signed = signed_in(&state, &headers);
    let mut target = format!(
        "{}/logout?post_logout_redirect_uri={}",
        state.config.issuer,
        urlencode(&format!("{}/", state.config.app_url))
    );
    if let Some((key, tokens)) = signed {
        if let Ok(mut sessions) = state.sessions.lock() {
            sessions.remove(&key);
        }
        if let Some(id_token) = tokens.id_token {
            target.push_str(&format!("&id_token_hint={}", urlencode(&id_token)));
        } else {
            target.push_str(&format!(
                "&client_id={}",
                urlencode(&state.config.client_id)
            ));
        }
    }
    let mut response = Redirect::to(&target).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("demo_app_session=; Max-Age=0; Path=/"),
    );
    response
}

/// The demo app's routes.
pub fn app_router(config: DemoAppConfig) -> Router {
    let state = AppState {
        config: Arc::new(config),
        http: reqwest::Client::new(),
        pending: Arc::default(),
        sessions: Arc::default(),
    };
    Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/call", post(call_api))
        .route("/refresh", post(refresh))
        .route("/logout", post(logout))
        .with_state(state)
}

/// A bound demo app.
pub struct DemoApp {
    listener: tokio::net::TcpListener,
    router: Router,
}

impl DemoApp {
    /// Binds `listen` (port 0 allowed).
    pub async fn bind(listen: SocketAddr, config: DemoAppConfig) -> std::io::Result<Self> {
        Ok(Self {
            listener: tokio::net::TcpListener::bind(listen).await?,
            router: app_router(config),
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
