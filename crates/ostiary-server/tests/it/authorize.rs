//! The authorization endpoint's validation: what is shown on a page, what is redirected.

use reqwest::StatusCode;

use crate::harness::*;

fn base(challenge: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", PUBLIC_CLIENT.into()),
        ("redirect_uri", REDIRECT_URI.into()),
        ("scope", "openid".into()),
        ("state", "st4te".into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
    ]
}

fn with(
    mut params: Vec<(&'static str, String)>,
    name: &'static str,
    value: Option<&str>,
) -> Vec<(&'static str, String)> {
    params.retain(|(n, _)| *n != name);
    if let Some(value) = value {
        params.push((name, value.into()));
    }
    params
}

async fn get(app: &TestApp, params: &[(&'static str, String)]) -> reqwest::Response {
    browser()
        .get(app.url("/authorize"))
        .query(params)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_bad_client_or_redirect_uri_is_shown_on_a_page_and_never_redirected() {
    let app = spawn_app().await;
    let (_, challenge) = pkce();
    for params in [
        with(base(&challenge), "client_id", Some("unknown")),
        with(base(&challenge), "client_id", None),
        with(
            base(&challenge),
            "redirect_uri",
            Some("https://evil.example/callback"),
        ),
        with(
            base(&challenge),
            "redirect_uri",
            Some("http://127.0.0.1:9999/callback/extra"),
        ),
        with(base(&challenge), "redirect_uri", None),
    ] {
        let response = get(&app, &params).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{params:?}");
        assert!(location(&response).is_empty());
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
}

#[tokio::test]
async fn other_errors_go_back_to_the_client_with_state_and_iss() {
    let app = spawn_app().await;
    let (_, challenge) = pkce();
    let cases = [
        (
            with(base(&challenge), "code_challenge", None),
            "invalid_request",
        ),
        (
            with(base(&challenge), "code_challenge_method", Some("plain")),
            "invalid_request",
        ),
        (
            with(base(&challenge), "code_challenge_method", None),
            "invalid_request",
        ),
        (
            with(base(&challenge), "response_type", Some("token")),
            "unsupported_response_type",
        ),
        (
            with(base(&challenge), "response_type", None),
            "invalid_request",
        ),
        (
            with(base(&challenge), "scope", Some("openid admin")),
            "invalid_scope",
        ),
        (
            with(
                base(&challenge),
                "resource",
                Some("https://not-allowed.example"),
            ),
            "invalid_target",
        ),
        (
            with(base(&challenge), "prompt", Some("none")),
            "login_required",
        ),
        (
            with(base(&challenge), "request", Some("eyJ.eyJ.")),
            "request_not_supported",
        ),
    ];
    for (params, error) in cases {
        let response = get(&app, &params).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{params:?}");
        let redirected = Redirected::from_location(&location(&response));
        assert!(redirected.url.as_str().starts_with(REDIRECT_URI));
        assert_eq!(
            redirected.param("error").as_deref(),
            Some(error),
            "{params:?}"
        );
        assert_eq!(redirected.param("state").as_deref(), Some("st4te"));
        assert_eq!(
            redirected.param("iss").as_deref(),
            Some(app.issuer.as_str())
        );
    }
}

#[tokio::test]
async fn repeated_parameters_are_refused() {
    let app = spawn_app().await;
    let (_, challenge) = pkce();
    let mut params = base(&challenge);
    params.push(("client_id", PUBLIC_CLIENT.into()));
    let response = get(&app, &params).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(location(&response).is_empty());
}

#[tokio::test]
async fn a_loopback_redirect_uri_registered_without_a_port_may_use_any_port() {
    use ostiary_core::client::{ClientId, ClientKind, RedirectUri};
    let app = spawn_app().await;
    app.idp
        .add_client(ostiary_core::idp::NewClient {
            id: ClientId::parse("native").unwrap(),
            kind: ClientKind::Public,
            redirect_uris: vec![RedirectUri::parse("http://127.0.0.1/cb").unwrap()],
            post_logout_redirect_uris: vec![],
            resources: vec![],
            extra_scopes: vec![],
            web_origins: vec![],
            backchannel_logout_uri: None,
            policy: Default::default(),
        })
        .await
        .unwrap();
    let (_, challenge) = pkce();
    let native = |uri: &str| {
        let params = with(base(&challenge), "client_id", Some("native"));
        with(params, "redirect_uri", Some(uri))
    };
    // RFC 8252 §7.3: a native app picks its port when it runs.
    let response = get(&app, &native("http://127.0.0.1:51000/cb")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).starts_with("/login?"));
    // Only the port may be added; the rest is compared as text.
    let response = get(&app, &native("http://127.1:51000/cb")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // A URI registered with a port is matched exactly.
    let other_port = with(
        base(&challenge),
        "redirect_uri",
        Some("http://127.0.0.1:51000/callback"),
    );
    assert_eq!(
        get(&app, &other_port).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_signed_in_browser_gets_a_code_without_a_second_login() {
    let app = spawn_app().await;
    let browser = browser();
    let (_, challenge) = pkce();
    let first = app
        .authorize(
            &browser,
            &base(&challenge)
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        )
        .await;
    assert!(first.param("code").is_some());
    let second = browser
        .get(app.url("/authorize"))
        .query(&base(&challenge))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::SEE_OTHER);
    let redirected = Redirected::from_location(&location(&second));
    assert!(redirected.param("code").is_some());
    assert_ne!(redirected.param("code"), first.param("code"));
    // prompt=login forces the login form even then.
    let forced = browser
        .get(app.url("/authorize"))
        .query(&with(base(&challenge), "prompt", Some("login")))
        .send()
        .await
        .unwrap();
    let login = location(&forced);
    assert!(login.starts_with("/login?"));
    assert!(
        !login.contains("prompt"),
        "the login itself satisfies prompt=login: {login}"
    );
}

#[tokio::test]
async fn max_age_forces_a_new_login_once_the_authentication_is_older() {
    let app = spawn_app().await;
    let browser = browser();
    let (_, challenge) = pkce();
    let pairs = base(&challenge);
    let first = app
        .authorize(
            &browser,
            &pairs
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        )
        .await;
    assert!(first.param("code").is_some());
    app.clock.advance(120);
    let fresh_enough = browser
        .get(app.url("/authorize"))
        .query(&with(base(&challenge), "max_age", Some("300")))
        .send()
        .await
        .unwrap();
    assert!(
        Redirected::from_location(&location(&fresh_enough))
            .param("code")
            .is_some()
    );
    let too_old = browser
        .get(app.url("/authorize"))
        .query(&with(base(&challenge), "max_age", Some("60")))
        .send()
        .await
        .unwrap();
    assert!(location(&too_old).starts_with("/login?"));
    let garbage = browser
        .get(app.url("/authorize"))
        .query(&with(base(&challenge), "max_age", Some("abc")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        Redirected::from_location(&location(&garbage))
            .param("error")
            .as_deref(),
        Some("invalid_request")
    );
    let fragment = browser
        .get(app.url("/authorize"))
        .query(&with(base(&challenge), "response_mode", Some("fragment")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        Redirected::from_location(&location(&fragment))
            .param("error")
            .as_deref(),
        Some("invalid_request")
    );
}
