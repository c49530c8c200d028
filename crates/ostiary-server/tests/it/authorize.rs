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
async fn a_loopback_redirect_uri_may_use_any_port() {
    let app = spawn_app().await;
    let (_, challenge) = pkce();
    // The registered URI is on port 9999; RFC 8252 §7.3 lets native apps pick their port.
    let params = with(
        base(&challenge),
        "redirect_uri",
        Some("http://127.0.0.1:51000/callback"),
    );
    let response = get(&app, &params).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).starts_with("/login?"));
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
