//! The whole flow a client sees, over HTTP.

use ostiary_demo::DemoApi;
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::*;

async fn spawn_demo_api(app: &TestApp) -> String {
    let api = DemoApi::bind("127.0.0.1:0".parse().unwrap(), app.validator(), &[])
        .await
        .unwrap();
    let url = format!("http://{}", api.local_addr().unwrap());
    tokio::spawn(api.run_until(std::future::pending()));
    url
}

async fn call_api(api_url: &str, access_token: &str) -> reqwest::Response {
    http()
        .get(format!("{api_url}/api/hello"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_client_logs_in_calls_the_api_refreshes_and_a_replay_ends_the_session() {
    let app = spawn_app().await;
    let api_url = spawn_demo_api(&app).await;

    // Discovery.
    let discovery: Value = http()
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], app.issuer);
    assert_eq!(discovery["token_endpoint"], app.url("/token"));
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );

    // Login form → authorize → code exchange with PKCE.
    let browser = browser();
    let tokens = app
        .tokens_for(&browser, PUBLIC_CLIENT, "openid profile offline_access")
        .await;
    let access_token = tokens["access_token"].as_str().unwrap();
    let first_refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 300);

    // The demo API accepts the access token, verified locally.
    let hello = call_api(&api_url, access_token).await;
    assert_eq!(hello.status(), StatusCode::OK);
    let hello: Value = hello.json().await.unwrap();
    assert_eq!(hello["client_id"], PUBLIC_CLIENT);

    // Refresh rotates.
    app.clock.advance(60);
    let refreshed = app.refresh(&first_refresh).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed: Value = refreshed.json().await.unwrap();
    let second_refresh = refreshed["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first_refresh);
    assert_eq!(
        call_api(&api_url, refreshed["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );

    // The successor is used; the old refresh token, replayed after that and after the grace
    // window: theft. The session ends.
    app.clock.advance(60);
    let rotated = app.refresh(&second_refresh).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let second_refresh = rotated.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.clock.advance(60);
    let replay = app.refresh(&first_refresh).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        replay.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let legitimate = app.refresh(&second_refresh).await;
    assert_eq!(
        legitimate.status(),
        StatusCode::BAD_REQUEST,
        "the successor dies with the session"
    );
    assert_eq!(
        app.userinfo(refreshed["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let sid = claims(access_token)["sid"].as_str().unwrap().to_owned();
    let session = app.idp.store().find_session(&sid).await.unwrap().unwrap();
    assert_eq!(session.end_reason.as_deref(), Some("refresh_token_reuse"));
}

#[tokio::test]
async fn logout_ends_the_session_and_refresh_fails_afterwards() {
    let app = spawn_app().await;
    let browser = browser();
    let tokens = app
        .tokens_for(&browser, PUBLIC_CLIENT, "openid offline_access")
        .await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();

    let logout = browser
        .get(app.url("/logout"))
        .query(&[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", LOGOUT_URI),
            ("state", "s1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&logout), format!("{LOGOUT_URI}?state=s1"));
    let cleared = logout
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .any(|c| {
            let c = c.to_str().unwrap();
            c.starts_with("__Host-ostiary_session=;") && c.contains("Max-Age=0")
        });
    assert!(cleared, "the browser-session cookie is cleared");

    let refresh = app.refresh(refresh_token).await;
    assert_eq!(refresh.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        refresh.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    assert_eq!(
        app.userinfo(tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // The browser is signed out at the IdP too: authorizing again shows the login form.
    let (_, challenge) = pkce();
    let again = browser
        .get(app.url("/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", PUBLIC_CLIENT),
            ("redirect_uri", REDIRECT_URI),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert!(location(&again).starts_with("/login?"));
}

#[tokio::test]
async fn an_id_token_hint_ends_the_session_even_without_the_browser_cookie() {
    let app = spawn_app().await;
    let tokens = app
        .tokens_for(&browser(), PUBLIC_CLIENT, "openid offline_access")
        .await;
    // An expired ID token is still a valid hint.
    app.clock.advance(3600);
    let logout = http()
        .get(app.url("/logout"))
        .query(&[("id_token_hint", tokens["id_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    assert!(logout.text().await.unwrap().contains("signed out"));
    assert_eq!(
        app.refresh(tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn logout_refuses_unregistered_post_logout_redirect_uris() {
    let app = spawn_app().await;
    let tokens = app
        .tokens_for(&browser(), PUBLIC_CLIENT, "openid offline_access")
        .await;
    let id_token = tokens["id_token"].as_str().unwrap();
    for target in ["https://evil.example/", "http://127.0.0.1:9999/bye/"] {
        let response = http()
            .get(app.url("/logout"))
            .query(&[
                ("id_token_hint", id_token),
                ("post_logout_redirect_uri", target),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{target}");
        assert!(location(&response).is_empty());
    }
    // Nothing was ended by the refused requests.
    assert_eq!(
        app.refresh(tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    // A forged hint is refused too.
    let forged = http()
        .get(app.url("/logout"))
        .query(&[("id_token_hint", "e30.e30.e30")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn logout_without_a_hint_asks_the_user_and_resists_cross_site_posts() {
    let app = spawn_app().await;
    let browser = browser();
    let tokens = app
        .tokens_for(&browser, PUBLIC_CLIENT, "openid offline_access")
        .await;

    let page = browser.get(app.url("/logout")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Sign out?"));
    let csrf = hidden_field(&html, "csrf_token");

    // A cross-site form post (no CSRF token, foreign Origin) ends nothing.
    let forged = browser
        .post(app.url("/logout/confirm"))
        .header("Origin", "https://evil.example")
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let no_token = browser
        .post(app.url("/logout/confirm"))
        .form(&[("x", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.refresh(tokens["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );

    let confirmed = browser
        .post(app.url("/logout/confirm"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), StatusCode::OK);
    let sid = claims(tokens["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = app.idp.store().find_session(&sid).await.unwrap().unwrap();
    assert_eq!(session.end_reason.as_deref(), Some("logout"));
}
