//! `spawn_app` and typed helpers for driving the IdP over HTTP.

use std::sync::Arc;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ostiary_core::Idp;
use ostiary_core::client::{ClientId, ClientKind, RedirectUri};
use ostiary_core::clock::{Clock, ManualClock};
use ostiary_core::idp::{IdpConfig, NewClient};
use ostiary_core::secret::{Credential, Password};
use ostiary_core::user::Username;
use ostiary_server::{Application, ServerConfig};
use reqwest::StatusCode;
use serde_json::Value;

/// The resource (audience) the test clients get access tokens for.
pub const API: &str = "https://api.ostiary.test";
/// A second resource the confidential client may also ask for.
pub const OTHER_API: &str = "https://other.ostiary.test";
pub const USERNAME: &str = "alice";
pub const PASSWORD: &str = "correct horse battery staple";
pub const PUBLIC_CLIENT: &str = "spa";
pub const CONFIDENTIAL_CLIENT: &str = "web";
pub const REDIRECT_URI: &str = "http://127.0.0.1:9999/callback";
pub const LOGOUT_URI: &str = "http://127.0.0.1:9999/bye";
/// The admin API's token in tests.
/// The retention interval of test apps: ten years.
pub const RETENTION_INTERVAL: i64 = 10 * 365 * 24 * 3600;
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdefghijklmnop";
/// The metrics scraper's token in tests.
pub const METRICS_TOKEN: &str = "test-metrics-token-0123456789abcdefghijklmn";
/// Fixed start of the injected clock (2026-01-01T00:00:00Z).
pub const T0: i64 = 1_767_225_600;

/// Adapts the IdP's manual clock for the verifier, so both see the same time.
#[derive(Debug)]
pub struct SharedClock(pub ManualClock);

impl ostiary_verify::Clock for SharedClock {
    fn now_unix(&self) -> i64 {
        self.0.now()
    }
}

pub struct TestApp {
    /// The issuer (`iss`); equal to `base` unless a test configures another.
    pub issuer: String,
    /// Where the server listens: `http://127.0.0.1:PORT`.
    pub base: String,
    pub clock: ManualClock,
    pub idp: Idp,
    pub client_secret: String,
    /// The database the server runs on (a SQLite file in a temporary directory, or a scratch
    /// PostgreSQL database).
    pub database_url: String,
    _dir: Arc<tempfile::TempDir>,
    postgres: Option<ostiary_store::testing::ScratchDatabase>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A browser: keeps cookies, never follows redirects (tests look at each hop).
/// A browser whose every request carries these headers (as if sent through proxies).
pub fn browser_with(headers: &[(&'static str, &[u8])]) -> reqwest::Client {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        map.append(
            *name,
            reqwest::header::HeaderValue::from_bytes(value).expect("header value"),
        );
    }
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(map)
        .build()
        .expect("client")
}

pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A back-end HTTP client without cookies.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub fn pkce() -> (String, String) {
    let verifier = Credential::generate().expose().to_owned();
    let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    (verifier, challenge)
}

async fn start(
    database_url: &str,
    clock: ManualClock,
    configure: impl FnOnce(&mut ServerConfig),
) -> (Application, String, String) {
    start_wrapped(database_url, clock, configure, |store| store).await
}

/// [`start`], with the store the app uses wrapped by `wrap`.
async fn start_wrapped(
    database_url: &str,
    clock: ManualClock,
    configure: impl FnOnce(&mut ServerConfig),
    wrap: impl FnOnce(Arc<dyn ostiary_core::Store>) -> Arc<dyn ostiary_core::Store>,
) -> (Application, String, String) {
    let store = wrap(ostiary_store::open(database_url).await.expect("store"));
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_token: Some(Credential::from_presented(ADMIN_TOKEN)),
        metrics_token: Some(Credential::from_presented(METRICS_TOKEN)),
        ..ServerConfig::default()
    };
    // Tests run the retention job themselves (`idp.apply_retention`), on the manual clock;
    // the background worker, on the real one, never comes round.
    config.idp.retention.interval = RETENTION_INTERVAL;
    configure(&mut config);
    let app = Application::build(config, store, Arc::new(clock))
        .await
        .expect("app");
    let issuer = app.idp().config().issuer.clone();
    let base = format!("http://{}", app.local_addr());
    (app, issuer, base)
}

impl TestApp {
    fn run(&mut self, app: Application) {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(tx);
        self.task = Some(tokio::spawn(async move {
            let _ = app
                .run_until(async move {
                    let _ = rx.await;
                })
                .await;
        }));
    }

    /// A second instance on the same database (and clock), serving on a port of its own, as
    /// several instances behind a proxy do; its issuer is its own address.
    pub async fn another_instance(&self) -> TestApp {
        let (app, issuer, base) = start(&self.database_url, self.clock.clone(), |_| {}).await;
        let mut other = TestApp {
            issuer,
            base,
            clock: self.clock.clone(),
            idp: app.idp().clone(),
            client_secret: self.client_secret.clone(),
            database_url: self.database_url.clone(),
            _dir: self._dir.clone(),
            postgres: None,
            stop: None,
            task: None,
        };
        other.run(app);
        other
    }

    /// Stops the server and starts a new one on the same database (and a new port).
    pub async fn restart(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let (app, issuer, base) = start(&self.database_url, self.clock.clone(), |_| {}).await;
        // A restarted server listens on a new port (and so, in tests, has a new issuer URL);
        // the keys and all state persist in the database.
        self.issuer = issuer;
        self.base = base;
        self.idp = app.idp().clone();
        self.run(app);
    }

    /// Stops the server and drops its scratch PostgreSQL database, if it has one.
    pub async fn close(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(database) = self.postgres.take() {
            // `WITH (FORCE)`: the IdP's pooled connections do not hold it up.
            database.drop_now().await.expect("drop the test database");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A verifier for the test API, keyed from the live JWKS, on the IdP's clock.
    pub fn validator(&self) -> ostiary_verify::Validator {
        ostiary_verify::Validator::new(
            self.issuer.clone(),
            API,
            &[ostiary_verify::Algorithm::ES256],
            ostiary_verify::JwksSource::remote(self.url("/jwks.json")),
        )
        .expect("validator")
        .with_clock(Arc::new(SharedClock(self.clock.clone())))
    }

    /// Drives the browser through authorize → login form → authorize → redirect, returning
    /// the query parameters of the final redirect to the client.
    pub async fn authorize(
        &self,
        browser: &reqwest::Client,
        params: &[(&str, &str)],
    ) -> Redirected {
        let mut url = reqwest::Url::parse(&self.url("/authorize")).expect("url");
        url.query_pairs_mut().extend_pairs(params);
        let mut response = browser.get(url).send().await.expect("authorize");
        for _ in 0..6 {
            if response.status() != StatusCode::SEE_OTHER {
                break;
            }
            let location = location(&response);
            if location.starts_with(REDIRECT_URI)
                || !location.starts_with('/') && !location.starts_with(&self.base)
            {
                return Redirected::from_location(&location);
            }
            let next = if location.starts_with('/') {
                self.url(&location)
            } else {
                location
            };
            response = if next.contains("/login?") {
                let page = browser.get(&next).send().await.expect("login page");
                assert_eq!(page.status(), StatusCode::OK);
                let html = page.text().await.expect("html");
                let csrf = hidden_field(&html, "csrf_token");
                let return_to = hidden_field(&html, "return_to");
                browser
                    .post(self.url("/login"))
                    .form(&[
                        ("username", USERNAME),
                        ("password", PASSWORD),
                        ("csrf_token", &csrf),
                        ("return_to", &return_to),
                    ])
                    .send()
                    .await
                    .expect("login")
            } else {
                browser.get(&next).send().await.expect("follow")
            };
        }
        panic!(
            "authorization did not end in a redirect to the client: {}",
            response.status()
        );
    }

    /// Login + authorization for the public client with PKCE, then the code exchange.
    pub async fn tokens_for(
        &self,
        browser: &reqwest::Client,
        client_id: &str,
        scope: &str,
    ) -> Value {
        let (verifier, challenge) = pkce();
        let redirected = self
            .authorize(
                browser,
                &[
                    ("response_type", "code"),
                    ("client_id", client_id),
                    ("redirect_uri", REDIRECT_URI),
                    ("scope", scope),
                    ("state", "xyz"),
                    ("nonce", "n-0S6"),
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                ],
            )
            .await;
        let code = redirected.param("code").expect("code");
        let response = self.exchange(client_id, &code, &verifier).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }

    pub async fn exchange(&self, client_id: &str, code: &str, verifier: &str) -> reqwest::Response {
        self.exchange_with_dpop(client_id, code, verifier, None)
            .await
    }

    /// The code exchange, with a `DPoP` header when `proof` is given.
    pub async fn exchange_with_dpop(
        &self,
        client_id: &str,
        code: &str,
        verifier: &str,
        proof: Option<&str>,
    ) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ];
        let mut request = http().post(self.url("/token"));
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        let request = if client_id == CONFIDENTIAL_CLIENT {
            request.basic_auth(CONFIDENTIAL_CLIENT, Some(&self.client_secret))
        } else {
            form.push(("client_id", client_id));
            request
        };
        request.form(&form).send().await.expect("token request")
    }

    /// Loads the login form in `browser` and submits it with these credentials.
    pub async fn login(
        &self,
        browser: &reqwest::Client,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        let html = browser
            .get(self.url("/login"))
            .send()
            .await
            .expect("login page")
            .text()
            .await
            .expect("html");
        let csrf = hidden_field(&html, "csrf_token");
        browser
            .post(self.url("/login"))
            .form(&[
                ("username", username),
                ("password", password),
                ("csrf_token", csrf.as_str()),
            ])
            .send()
            .await
            .expect("login")
    }

    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.refresh_with_dpop(refresh_token, None).await
    }

    /// The public client's refresh, with a `DPoP` header when `proof` is given.
    pub async fn refresh_with_dpop(
        &self,
        refresh_token: &str,
        proof: Option<&str>,
    ) -> reqwest::Response {
        let mut request = http().post(self.url("/token"));
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        request
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", PUBLIC_CLIENT),
            ])
            .send()
            .await
            .expect("refresh request")
    }

    pub async fn revoke(&self, token: &str) -> reqwest::Response {
        http()
            .post(self.url("/revoke"))
            .form(&[("token", token), ("client_id", PUBLIC_CLIENT)])
            .send()
            .await
            .expect("revoke request")
    }

    /// Token introspection (RFC 7662) as the confidential client, a resource server of `API`.
    pub async fn introspect(&self, token: &str) -> reqwest::Response {
        http()
            .post(self.url("/introspect"))
            .basic_auth(CONFIDENTIAL_CLIENT, Some(&self.client_secret))
            .form(&[("token", token)])
            .send()
            .await
            .expect("introspection")
    }

    /// The revocation feed from its start.
    pub async fn revocation_feed(&self) -> Value {
        http()
            .get(self.url("/revocations"))
            .send()
            .await
            .expect("feed")
            .json()
            .await
            .expect("json")
    }

    pub async fn userinfo(&self, access_token: &str) -> reqwest::Response {
        http()
            .get(self.url("/userinfo"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("userinfo")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut IdpConfig)) -> TestApp {
    spawn_app_with_server(|config| configure(&mut config.idp)).await
}

/// An app with its server settings changed (admin and metrics tokens are set by default).
pub async fn spawn_app_with_server(configure: impl FnOnce(&mut ServerConfig)) -> TestApp {
    spawn_app_on(false, configure).await
}

/// An app on a scratch PostgreSQL database (`OSTIARY_TEST_DATABASE_URL`; tests using it are
/// `#[ignore]`d without it). Call [`TestApp::close`] at the end to drop the database.
pub async fn spawn_app_on_postgres() -> TestApp {
    spawn_app_on(true, |_| {}).await
}

/// An app whose store counts the calls made to it (by method), to pin how many store round
/// trips a request makes.
pub async fn spawn_counting_app() -> (TestApp, Arc<ostiary_store::counting::CountingStore>) {
    let counting = std::sync::Mutex::new(None);
    let app = spawn_app_wrapped(
        false,
        |_| {},
        |store| {
            let store = Arc::new(ostiary_store::counting::CountingStore::new(store));
            *counting.lock().unwrap() = Some(Arc::clone(&store));
            store
        },
    )
    .await;
    let counting = counting
        .lock()
        .unwrap()
        .take()
        .expect("the store was opened");
    (app, counting)
}

async fn spawn_app_on(postgres: bool, configure: impl FnOnce(&mut ServerConfig)) -> TestApp {
    spawn_app_wrapped(postgres, configure, |store| store).await
}

async fn spawn_app_wrapped(
    postgres: bool,
    configure: impl FnOnce(&mut ServerConfig),
    wrap: impl FnOnce(Arc<dyn ostiary_core::Store>) -> Arc<dyn ostiary_core::Store>,
) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    let scratch = if postgres {
        Some(ostiary_store::testing::ScratchDatabase::create("the server's PostgreSQL tests").await)
    } else {
        None
    };
    let database_url = match &scratch {
        Some(database) => database.url().to_owned(),
        None => format!("sqlite://{}", dir.path().join("ostiary.db").display()),
    };
    let clock = ManualClock::new(T0);
    let (app, issuer, base) = start_wrapped(&database_url, clock.clone(), configure, wrap).await;
    let idp = app.idp().clone();
    idp.add_user(
        Username::parse(USERNAME).expect("username"),
        Password::new(PASSWORD),
    )
    .await
    .expect("user");
    let uris = |u: &str| vec![RedirectUri::parse(u).expect("uri")];
    idp.add_client(NewClient {
        id: ClientId::parse(PUBLIC_CLIENT).expect("id"),
        kind: ClientKind::Public,
        redirect_uris: uris(REDIRECT_URI),
        post_logout_redirect_uris: uris(LOGOUT_URI),
        resources: vec![API.into()],
        extra_scopes: vec![],
        web_origins: vec![],
        backchannel_logout_uri: None,
        policy: Default::default(),
    })
    .await
    .expect("public client");
    let (_, secret) = idp
        .add_client(NewClient {
            id: ClientId::parse(CONFIDENTIAL_CLIENT).expect("id"),
            kind: ClientKind::Confidential,
            redirect_uris: uris(REDIRECT_URI),
            post_logout_redirect_uris: uris(LOGOUT_URI),
            resources: vec![API.into(), OTHER_API.into()],
            extra_scopes: vec!["todos:read".into()],
            web_origins: vec![],
            backchannel_logout_uri: None,
            policy: Default::default(),
        })
        .await
        .expect("confidential client");
    let mut test_app = TestApp {
        issuer,
        base,
        clock,
        idp,
        client_secret: secret.expect("secret").expose().to_owned(),
        database_url,
        _dir: dir,
        postgres: scratch,
        stop: None,
        task: None,
    };
    test_app.run(app);
    test_app
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

pub fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').expect("closing quote");
    html_unescape(&html[start..end])
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

/// The query of a redirect to the client.
#[derive(Debug)]
pub struct Redirected {
    pub url: reqwest::Url,
}

impl Redirected {
    pub fn from_location(location: &str) -> Self {
        Self {
            url: reqwest::Url::parse(location).expect("absolute redirect"),
        }
    }

    pub fn param(&self, name: &str) -> Option<String> {
        self.url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// Decodes a JWT's payload without verifying it (tests check signatures separately).
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json")
}

pub fn header(jwt: &str) -> Value {
    let header = jwt.split('.').next().expect("header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("b64")).expect("json")
}

/// The `sid` claim of the access token in a token response.
pub fn sid_of(tokens: &Value) -> String {
    claims(tokens["access_token"].as_str().expect("access_token"))["sid"]
        .as_str()
        .expect("sid")
        .to_owned()
}

impl TestApp {
    /// The audit events of one kind, oldest first.
    pub async fn audit_of(
        &self,
        kind: ostiary_core::audit::AuditKind,
    ) -> Vec<ostiary_core::audit::AuditEvent> {
        self.idp
            .audit_events(&ostiary_core::audit::AuditFilter {
                kind: Some(kind),
                ..ostiary_core::audit::AuditFilter::default()
            })
            .await
            .expect("audit events")
    }
}

/// Serves `router` on a fresh loopback port in the background: its base URL, `http://127.0.0.1:PORT`.
pub async fn serve_router(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}
