//! Which responses may be cached: the public documents (metadata, JWKS) for their max-age,
//! nothing else. Every route the router declares is requested, signed in and with the right
//! credentials where it serves private data, and its `Cache-Control` is checked.

use std::collections::BTreeSet;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

use crate::harness::*;

/// The only paths whose responses may be stored, and what they say.
const CACHEABLE: &[&str] = &[
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/jwks.json",
];
const PUBLIC_MAX_AGE: &str = "public, max-age=300";

/// Every path `ostiary_server::router` declares, read from its source: a new route that this
/// test does not request makes it fail.
fn declared_paths() -> BTreeSet<String> {
    let source = include_str!("../../src/lib.rs");
    let mut paths = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let start = rest.find('"').expect("a path") + 1;
        let end = start + rest[start..].find('"').expect("its end");
        paths.insert(rest[start..end].to_owned());
        rest = &rest[end..];
    }
    paths
}

struct Walk<'a> {
    app: &'a TestApp,
    requested: BTreeSet<String>,
}

impl Walk<'_> {
    /// Sends `request` (to `path`), expects `status`, and checks its `Cache-Control`.
    async fn check(&mut self, path: &str, request: RequestBuilder, status: StatusCode) {
        let response = request.send().await.expect("request");
        let route = path.split('?').next().unwrap_or(path);
        assert_eq!(response.status(), status, "{path}");
        let cache = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .map(|v| v.to_str().unwrap().to_owned());
        let expected = if CACHEABLE.contains(&route) {
            PUBLIC_MAX_AGE
        } else {
            "no-store"
        };
        assert_eq!(
            cache.as_deref(),
            Some(expected),
            "Cache-Control of {status} {path}"
        );
        self.requested.insert(route.to_owned());
    }

    fn url(&self, path: &str) -> String {
        self.app.url(path)
    }
}

#[tokio::test]
async fn only_the_public_documents_are_cacheable_every_other_response_is_no_store() {
    let app = spawn_app().await;
    let browser = browser();
    let tokens = app
        .tokens_for(&browser, PUBLIC_CLIENT, "openid offline_access")
        .await;
    let access_token = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let anonymous = http();
    let mut walk = Walk {
        app: &app,
        requested: BTreeSet::new(),
    };

    // Public documents.
    for path in CACHEABLE {
        walk.check(path, anonymous.get(walk.url(path)), StatusCode::OK)
            .await;
    }

    // Bearer-protected and cross-origin JSON.
    walk.check(
        "/userinfo",
        anonymous
            .get(walk.url("/userinfo"))
            .bearer_auth(&access_token),
        StatusCode::OK,
    )
    .await;
    walk.check(
        "/userinfo",
        anonymous
            .post(walk.url("/userinfo"))
            .bearer_auth(&access_token),
        StatusCode::OK,
    )
    .await;
    walk.check(
        "/userinfo",
        anonymous.get(walk.url("/userinfo")),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    walk.check(
        "/revocations",
        anonymous.get(walk.url("/revocations")),
        StatusCode::OK,
    )
    .await;
    walk.check(
        "/revocations/stream",
        anonymous.get(walk.url("/revocations/stream")),
        StatusCode::OK,
    )
    .await;

    // Pages and redirects of the signed-in browser (CSRF tokens, codes, sessions).
    let (_, challenge) = pkce();
    let authorize = browser.get(walk.url("/authorize")).query(&[
        ("response_type", "code"),
        ("client_id", PUBLIC_CLIENT),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    walk.check("/authorize", authorize, StatusCode::SEE_OTHER)
        .await;
    walk.check(
        "/authorize",
        browser.post(walk.url("/authorize")),
        StatusCode::BAD_REQUEST,
    )
    .await;
    walk.check(
        "/login",
        browser.get(walk.url("/login?return_to=%2Faccount")),
        StatusCode::OK,
    )
    .await;
    walk.check(
        "/login",
        http().post(walk.url("/login")),
        StatusCode::FORBIDDEN,
    )
    .await;
    walk.check("/", browser.get(walk.url("/")), StatusCode::OK)
        .await;
    walk.check(
        "/account",
        browser.get(walk.url("/account")),
        StatusCode::OK,
    )
    .await;
    walk.check(
        "/account/sessions",
        browser.get(walk.url("/account/sessions")),
        StatusCode::OK,
    )
    .await;
    let page = browser
        .get(walk.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let end = browser.post(walk.url("/account/sessions/end")).form(&[
        ("which", "others"),
        ("csrf_token", hidden_field(&page, "csrf_token").as_str()),
    ]);
    walk.check("/account/sessions/end", end, StatusCode::SEE_OTHER)
        .await;
    walk.check("/logout", browser.get(walk.url("/logout")), StatusCode::OK)
        .await;
    walk.check(
        "/logout",
        browser
            .post(walk.url("/logout"))
            .form(&[("client_id", PUBLIC_CLIENT)]),
        StatusCode::OK,
    )
    .await;
    walk.check(
        "/logout/confirm",
        browser
            .post(walk.url("/logout/confirm"))
            .form(&[("csrf_token", "forged")]),
        StatusCode::FORBIDDEN,
    )
    .await;

    // The admin API, with and without its token.
    let admin = |method: Method, path: &str| {
        anonymous
            .request(method, app.url(path))
            .bearer_auth(ADMIN_TOKEN)
    };
    walk.check(
        "/admin/sessions",
        admin(Method::GET, "/admin/sessions"),
        StatusCode::OK,
    )
    .await;
    walk.check(
        "/admin/sessions",
        anonymous.get(walk.url("/admin/sessions")),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    walk.check(
        "/admin/audit",
        admin(Method::GET, "/admin/audit"),
        StatusCode::OK,
    )
    .await;
    walk.check(
        "/admin/audit",
        admin(Method::GET, "/admin/audit?kind=nonsense"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    walk.check(
        "/admin/backchannel",
        admin(Method::GET, "/admin/backchannel"),
        StatusCode::OK,
    )
    .await;
    let revoke = admin(Method::POST, "/admin/sessions/revoke").form(&[("sid", "no-such-session")]);
    walk.check("/admin/sessions/revoke", revoke, StatusCode::OK)
        .await;
    let rotate = admin(Method::POST, "/admin/keys/rotate").form(&[("end_sessions", "true")]);
    walk.check("/admin/keys/rotate", rotate, StatusCode::BAD_REQUEST)
        .await;
    let unlock = admin(Method::POST, "/admin/users/unlock").form(&[("user", USERNAME)]);
    walk.check("/admin/users/unlock", unlock, StatusCode::OK)
        .await;

    // Operations.
    walk.check(
        "/healthz",
        anonymous.get(walk.url("/healthz")),
        StatusCode::OK,
    )
    .await;
    walk.check(
        "/readyz",
        anonymous.get(walk.url("/readyz")),
        StatusCode::OK,
    )
    .await;
    walk.check(
        "/metrics",
        anonymous
            .get(walk.url("/metrics"))
            .bearer_auth(METRICS_TOKEN),
        StatusCode::OK,
    )
    .await;
    walk.check(
        "/no/such/page",
        anonymous.get(walk.url("/no/such/page")),
        StatusCode::NOT_FOUND,
    )
    .await;
    walk.check(
        "/admin/sessions",
        anonymous.delete(walk.url("/admin/sessions")),
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;

    // The token endpoints (last: revoking the refresh token ends the browser's session).
    let introspect = anonymous
        .post(walk.url("/introspect"))
        .basic_auth(CONFIDENTIAL_CLIENT, Some(&app.client_secret))
        .form(&[("token", access_token.as_str())]);
    walk.check("/introspect", introspect, StatusCode::OK).await;
    let refresh = anonymous.post(walk.url("/token")).form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
        ("client_id", PUBLIC_CLIENT),
    ]);
    walk.check("/token", refresh, StatusCode::OK).await;
    walk.check(
        "/token",
        anonymous
            .post(walk.url("/token"))
            .form(&[("grant_type", "password")]),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let revoke = anonymous.post(walk.url("/revoke")).form(&[
        ("token", refresh_token.as_str()),
        ("client_id", PUBLIC_CLIENT),
    ]);
    walk.check("/revoke", revoke, StatusCode::OK).await;
    walk.check(
        "/browser/token",
        anonymous.post(walk.url("/browser/token")),
        StatusCode::BAD_REQUEST,
    )
    .await;
    walk.check(
        "/browser/logout",
        anonymous.post(walk.url("/browser/logout")),
        StatusCode::BAD_REQUEST,
    )
    .await;

    let missed: Vec<_> = declared_paths()
        .difference(&walk.requested)
        .cloned()
        .collect();
    assert!(
        missed.is_empty(),
        "routes this test does not check: {missed:?}"
    );
}

#[tokio::test]
async fn the_admin_api_answers_no_store_with_its_data() {
    let app = spawn_app().await;
    app.tokens_for(&browser(), PUBLIC_CLIENT, "openid").await;

    let response = http()
        .get(app.url("/admin/sessions"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();

    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["sessions"].as_array().map(Vec::len), Some(1), "{body}");
}
