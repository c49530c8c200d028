//! Browser clients: the refresh token lives in an IdP cookie, reached only through the CORS-
//! and CSRF-guarded browser endpoints.

use ostiary_core::client::{ClientId, ClientKind, RedirectUri};
use ostiary_core::idp::NewClient;
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::*;

const SPA: &str = "spa-browser";
const SPA_ORIGIN: &str = "http://app.ostiary.localhost:5173";
const SPA_REDIRECT: &str = "http://app.ostiary.localhost:5173/callback";

async fn with_browser_client(app: &TestApp) {
    app.idp
        .add_client(NewClient {
            id: ClientId::parse(SPA).unwrap(),
            kind: ClientKind::Browser,
            redirect_uris: vec![RedirectUri::parse(SPA_REDIRECT).unwrap()],
            post_logout_redirect_uris: vec![],
            resources: vec![API.into()],
            extra_scopes: vec![],
            web_origins: vec![],
            backchannel_logout_uri: None,
            policy: Default::default(),
        })
        .await
        .unwrap();
}

/// What the app's script holds after a call: the body; what the browser's cookie jar holds:
/// the refresh cookie.
struct Answer {
    status: StatusCode,
    body: Value,
    cookie: Option<(String, String)>,
    set_cookie: Option<String>,
    allow_origin: Option<String>,
}

async fn call(
    app: &TestApp,
    path: &str,
    origin: &str,
    cookie: Option<&(String, String)>,
    form: &[(&str, &str)],
    csrf: bool,
) -> Answer {
    let mut request = http()
        .post(app.url(&format!("{path}?client_id={SPA}")))
        .header("Origin", origin)
        .form(form);
    if csrf {
        request = request.header("X-Ostiary-CSRF", "1");
    }
    if let Some((name, value)) = cookie {
        request = request.header("Cookie", format!("{name}={value}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let allow_origin = response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned());
    let set_cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.contains("ostiary_refresh_"));
    let cookie = set_cookie.as_ref().and_then(|c| {
        let (name, rest) = c.split_once('=')?;
        let value = rest.split(';').next()?;
        (!value.is_empty()).then(|| (name.to_owned(), value.to_owned()))
    });
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        body,
        cookie,
        set_cookie,
        allow_origin,
    }
}

async fn refresh(app: &TestApp, cookie: &(String, String)) -> Answer {
    call(
        app,
        "/browser/token",
        SPA_ORIGIN,
        Some(cookie),
        &[("grant_type", "refresh_token")],
        true,
    )
    .await
}

/// Login, authorize and code exchange through the browser endpoint.
async fn signed_in(app: &TestApp) -> Answer {
    let (verifier, challenge) = pkce();
    let redirected = app
        .authorize(
            &browser(),
            &[
                ("response_type", "code"),
                ("client_id", SPA),
                ("redirect_uri", SPA_REDIRECT),
                ("scope", "openid offline_access"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    let code = redirected.param("code").expect("code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", SPA_REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    call(app, "/browser/token", SPA_ORIGIN, None, &form, true).await
}

#[tokio::test]
async fn the_refresh_token_is_only_ever_in_a_strict_http_only_cookie() {
    let app = spawn_app().await;
    with_browser_client(&app).await;
    let answer = signed_in(&app).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body["access_token"].is_string());
    assert!(answer.body["id_token"].is_string());
    assert!(
        answer.body.get("refresh_token").is_none(),
        "never in the body"
    );
    assert_eq!(answer.allow_origin.as_deref(), Some(SPA_ORIGIN));
    let set_cookie = answer.set_cookie.expect("refresh cookie");
    assert!(
        set_cookie.starts_with("__Host-ostiary_refresh_"),
        "{set_cookie}"
    );
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(
            set_cookie.contains(attribute),
            "{set_cookie} lacks {attribute}"
        );
    }
    assert!(!set_cookie.contains("Domain"));
    let max_age: i64 = set_cookie
        .split("Max-Age=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(max_age > 0 && max_age <= app.idp.config().session.absolute_lifetime);

    // Each refresh replaces the cookie; the body never carries it.
    let cookie = answer.cookie.unwrap();
    let refreshed = refresh(&app, &cookie).await;
    assert_eq!(refreshed.status, StatusCode::OK);
    assert!(refreshed.body.get("refresh_token").is_none());
    let next = refreshed.cookie.expect("a rotated cookie");
    assert_ne!(next.1, cookie.1);
    // The absolute lifetime bounds the cookie as time passes.
    app.clock.advance(3600);
    let later = refresh(&app, &next).await;
    let later_age: i64 = later
        .set_cookie
        .unwrap()
        .split("Max-Age=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(later_age, max_age - 3600);
}

#[tokio::test]
async fn a_replayed_stolen_cookie_ends_the_session_and_clears_the_cookie() {
    let app = spawn_app().await;
    with_browser_client(&app).await;
    let stolen = signed_in(&app).await.cookie.unwrap();
    let second = refresh(&app, &stolen).await.cookie.unwrap();
    app.clock.advance(60);
    // The owner goes on refreshing; the thief comes back with the copied cookie.
    let third = refresh(&app, &second).await.cookie.unwrap();
    app.clock.advance(60);
    let theft = refresh(&app, &stolen).await;
    assert_eq!(theft.status, StatusCode::BAD_REQUEST);
    assert_eq!(theft.body["error"], "invalid_grant");
    assert!(
        theft.set_cookie.unwrap().contains("Max-Age=0"),
        "the dead cookie is cleared"
    );
    assert_eq!(refresh(&app, &third).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_both_stay_signed_in() {
    let app = spawn_app().await;
    with_browser_client(&app).await;
    let cookie = signed_in(&app).await.cookie.unwrap();
    let (a, b) = tokio::join!(refresh(&app, &cookie), refresh(&app, &cookie));
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(a.cookie, b.cookie, "one successor, handed to both");
    assert_eq!(
        refresh(&app, &a.cookie.unwrap()).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_unregistered_origin_or_a_missing_csrf_header_rotates_nothing_and_learns_nothing() {
    let app = spawn_app().await;
    with_browser_client(&app).await;
    let cookie = signed_in(&app).await.cookie.unwrap();
    for origin in [
        "http://evil.ostiary.localhost:5173",
        "https://attacker.example",
        "null",
    ] {
        let answer = call(
            &app,
            "/browser/token",
            origin,
            Some(&cookie),
            &[("grant_type", "refresh_token")],
            true,
        )
        .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{origin}");
        assert!(
            answer.allow_origin.is_none(),
            "no CORS headers for {origin}"
        );
        assert!(answer.cookie.is_none() && answer.body.get("access_token").is_none());
    }
    // A cross-site form post cannot add the custom header.
    let form_post = call(
        &app,
        "/browser/token",
        SPA_ORIGIN,
        Some(&cookie),
        &[("grant_type", "refresh_token")],
        false,
    )
    .await;
    assert_eq!(form_post.status, StatusCode::FORBIDDEN);
    assert!(form_post.cookie.is_none());
    // Nothing rotated: the original cookie is still the current one.
    let answer = refresh(&app, &cookie).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_ne!(answer.cookie.unwrap().1, cookie.1);
}

#[tokio::test]
async fn the_preflight_answers_only_registered_origins() {
    let app = spawn_app().await;
    with_browser_client(&app).await;
    let preflight = |origin: &'static str| {
        http()
            .request(
                reqwest::Method::OPTIONS,
                app.url(&format!("/browser/token?client_id={SPA}")),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "content-type,x-ostiary-csrf",
            )
            .send()
    };
    let allowed = preflight(SPA_ORIGIN).await.unwrap();
    assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
    assert_eq!(allowed.headers()["access-control-allow-origin"], SPA_ORIGIN);
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );
    assert!(
        allowed.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("x-ostiary-csrf")
    );
    let refused = preflight("http://evil.ostiary.localhost:5173")
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn a_browser_client_cannot_use_the_plain_token_endpoint() {
    let app = spawn_app().await;
    with_browser_client(&app).await;
    let response = http()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", SPA),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );
    // Nor send a refresh token in the body of the browser endpoint.
    let answer = call(
        &app,
        "/browser/token",
        SPA_ORIGIN,
        None,
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        true,
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn logout_from_the_app_ends_the_session_and_clears_the_cookies() {
    let app = spawn_app().await;
    with_browser_client(&app).await;
    let signed = signed_in(&app).await;
    let cookie = signed.cookie.unwrap();
    let sid = claims(signed.body["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let logout = call(
        &app,
        "/browser/logout",
        SPA_ORIGIN,
        Some(&cookie),
        &[],
        true,
    )
    .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    assert_eq!(logout.allow_origin.as_deref(), Some(SPA_ORIGIN));
    assert!(logout.set_cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(refresh(&app, &cookie).await.status, StatusCode::BAD_REQUEST);
    let session = app.idp.store().find_session(&sid).await.unwrap().unwrap();
    assert_eq!(session.end_reason.as_deref(), Some("logout"));
}

/// Every IdP endpoint a page sends DPoP proofs to lets the `DPoP` request header through CORS
/// and lets script read the `DPoP-Nonce` (and the challenge, where there is one).
#[tokio::test]
async fn pages_may_send_dpop_proofs_and_read_nonces_wherever_they_send_tokens() {
    let lowercase = |response: &reqwest::Response, name: &str| {
        response.headers()[name]
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
    };
    let app = spawn_app().await;
    with_browser_client(&app).await;
    for (path, method) in [
        (format!("/browser/token?client_id={SPA}"), "POST"),
        ("/userinfo".to_owned(), "GET"),
    ] {
        let preflight = http()
            .request(reqwest::Method::OPTIONS, app.url(&path))
            .header("Origin", SPA_ORIGIN)
            .header("Access-Control-Request-Method", method)
            .header("Access-Control-Request-Headers", "dpop")
            .send()
            .await
            .unwrap();
        assert!(preflight.status().is_success(), "{path}");
        let allowed = lowercase(&preflight, "access-control-allow-headers");
        assert!(allowed.contains("dpop"), "{path}: {allowed}");

        let answer = http()
            .request(method.parse().unwrap(), app.url(&path))
            .header("Origin", SPA_ORIGIN)
            .header("X-Ostiary-CSRF", "1")
            .send()
            .await
            .unwrap();
        let exposed = lowercase(&answer, "access-control-expose-headers");
        assert!(exposed.contains("dpop-nonce"), "{path}: {exposed}");
    }
    let userinfo = http()
        .get(app.url("/userinfo"))
        .header("Origin", SPA_ORIGIN)
        .send()
        .await
        .unwrap();
    let exposed = lowercase(&userinfo, "access-control-expose-headers");
    assert!(exposed.contains("www-authenticate"), "{exposed}");
}
